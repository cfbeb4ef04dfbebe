import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackendKind } from '../../../src/core/model.ts';
import type { RecordedRequest } from '../../emulators/openai/index.ts';
import { digest, pdf, png } from '../../fixtures/media.ts';
import {
  alternativesIn,
  type BotProcess,
  click,
  command,
  createWorld,
  openVote,
  replyTo,
  startThread,
  type World,
  waitForBallot,
} from '../harness.ts';
import type { ScenarioOptions } from './options.ts';

const IMAGE_MAX_BYTES = 8192;

/** Images and files in threads (issue 16), run against one backend. */
export function imageScenarios(backend: BackendKind, options: ScenarioOptions = {}): void {
  let world: World;
  let bot: BotProcess;
  let alice: { id: string };
  let mod: { id: string };
  const env = () => ({
    BACKEND: backend,
    ALTERNATIVES_COOLDOWN_SECONDS: '0',
    IMAGE_MAX_BYTES: String(IMAGE_MAX_BYTES),
    ...options.env?.(),
  });

  beforeAll(async () => {
    world = await createWorld();
    bot = await world.startBot(env());
    alice = world.discord.createUser({ username: 'alice' });
    mod = world.discord.createUser({ username: 'mod', manageThreads: true });
  });
  afterAll(() => world.close());

  const post = (
    threadId: string,
    text: string,
    files: { filename: string; content: Buffer; contentType: string }[],
  ) => world.discord.postMessage(threadId, alice.id, text, { attachments: files });
  const pngFile = (name: string, bytes: Buffer) => ({
    filename: name,
    content: bytes,
    contentType: 'image/png',
  });

  /** Generation requests (either API) made since request number `since`. */
  function generations(since: number): RecordedRequest[] {
    return world.openai.requests
      .slice(since)
      .filter((r) => r.route === 'POST /v1/responses' || r.route === 'POST /v1/chat/completions');
  }

  /** The `detail` of every image part a request body carries, in either API's shape. */
  function imageDetails(body: unknown): string[] {
    const found: string[] = [];
    JSON.stringify(body, (_key, value: unknown) => {
      if (value && typeof value === 'object' && !Array.isArray(value)) {
        const part = value as { type?: string; detail?: string; image_url?: { detail?: string } };
        if (part.type === 'input_image') found.push(part.detail ?? 'none');
        if (part.type === 'image_url') found.push(part.image_url?.detail ?? 'none');
      }
      return value;
    });
    return found;
  }

  function noticeIn(threadId: string, start: string) {
    return world.discord.waitFor(
      () => world.discord.messages(threadId).find((m) => m.content.startsWith(start)),
      { message: `no notice starting "${start}" in ${threadId}` },
    );
  }

  describe(`images and files (${backend} backend${options.label ? `, ${options.label}` : ''})`, () => {
    const red = png([255, 0, 0]);
    const seesRed = `img ${digest(red)}`;

    it('an image reaches the model, every alternative of a fork, and the winner after a restart and the URL expiry; a switch and a new conversation carry it', async () => {
      const threadId = await startThread(world, alice.id, 'pictures');
      const before = world.openai.requests.length;
      post(threadId, 'what is this?', [pngFile('red.png', red)]);
      const first = await replyTo(world, threadId, 'alice: what is this?');
      expect(first.text).toContain(`saw 1 image, 0 files [${seesRed}]`);
      expect(generations(before).flatMap((r) => imageDetails(r.body))).toEqual(['auto']);

      // A fork: both alternatives see the image of the history, at low detail.
      const beforeFork = world.openai.requests.length;
      const ballot = await openVote(world, threadId, alice.id, { count: 2, prompt: 'compare them' });
      const alternatives = alternativesIn(world, threadId);
      expect(alternatives).toHaveLength(2);
      for (const alternative of alternatives) expect(alternative.content).toContain(seesRed);
      // The responses backend chains the alternatives on the stored response that holds the image: nothing is sent
      // again. The others send it with each alternative (chat: once, with `n`), at low detail.
      const forkDetails = generations(beforeFork).flatMap((r) => imageDetails(r.body));
      if (backend === 'responses') expect(forkDetails).toEqual([]);
      else expect(forkDetails).toEqual(backend === 'chat' ? ['low'] : ['low', 'low']);
      await click(world, ballot, 'B', alice.id);
      await waitForBallot(world, threadId, (m) => m.id === ballot.id && m.content.startsWith('✅'));

      // A restart, and Discord's URL has expired: the bot still has the bytes.
      await bot.stop();
      world.discord.expireAttachments();
      bot = await world.startBot(env());
      const afterRestart = await (async () => {
        world.discord.postMessage(threadId, alice.id, 'still there?');
        return replyTo(world, threadId, 'alice: still there?', 30_000);
      })();
      expect(afterRestart.text).toContain(seesRed);

      // A switch to the losing alternative: its next turn (on the conversations backend, in a new conversation
      // made from the bot's record) still sends the image.
      const beforeSwitch = world.openai.requests.length;
      await command(world, {
        channelId: threadId,
        userId: mod.id,
        name: 'branch',
        subcommand: 'switch',
        options: { branch: 'b2' },
      });
      world.discord.postMessage(threadId, alice.id, 'on the other branch');
      const switched = await replyTo(world, threadId, 'alice: on the other branch');
      expect(switched.text).toContain(`saw 1 image, 0 files [${seesRed}]`);
      if (backend === 'conversations') {
        const copied = world.openai.requests
          .slice(beforeSwitch)
          .filter((r) => r.route === 'POST /v1/conversations');
        expect(copied.flatMap((r) => imageDetails(r.body))).toEqual(['auto']);
      }
    });

    it("every automatic alternative sees the prompt's image, at low detail", async () => {
      const threadId = await startThread(world, alice.id, 'auto forks');
      await command(world, {
        channelId: threadId,
        userId: mod.id,
        name: 'settings',
        options: { auto_alternatives: 2 },
      });
      const green = png([0, 128, 0]);
      const before = world.openai.requests.length;
      post(threadId, 'which colour?', [pngFile('green.png', green)]);
      await waitForBallot(world, threadId, (m) => m.content.startsWith('🗳'));
      const alternatives = alternativesIn(world, threadId).filter((m) =>
        m.content.includes('alice: which colour?'),
      );
      expect(alternatives).toHaveLength(2);
      for (const alternative of alternatives)
        expect(alternative.content).toContain(`saw 1 image, 0 files [img ${digest(green)}]`);
      expect(generations(before).flatMap((r) => imageDetails(r.body))).toEqual(
        backend === 'chat' ? ['low'] : ['low', 'low'],
      );
    });

    it('PDFs go to the OpenAI backends as files; the chat backend names them instead', async () => {
      const threadId = await startThread(world, alice.id, 'documents');
      const doc = pdf('quarterly');
      post(threadId, 'summarise', [{ filename: 'report.pdf', content: doc, contentType: 'application/pdf' }]);
      const reply = await replyTo(world, threadId, 'alice: summarise');
      // The chat backend sends a note in the file's place (the model reads the text parts joined).
      if (backend === 'chat') expect(reply.text).toContain('to "alice: summarise[file report.pdf: not sent');
      else expect(reply.text).toContain(`saw 0 images, 1 file [file ${digest(doc)}]`);
    });

    it('an oversized image gets one clear line, and the text is answered', async () => {
      const threadId = await startThread(world, alice.id, 'big ones');
      const big = png([0, 255, 0], { pad: IMAGE_MAX_BYTES + 100 });
      const small = png([0, 0, 255]);
      post(threadId, 'two pictures', [pngFile('big.png', big), pngFile('small.png', small)]);
      const line = await noticeIn(threadId, '📎');
      expect(line.content).toBe(
        '📎 Not sent to the model: `big.png` is over 0 MB. The text of the message is answered.'.replace(
          '0 MB',
          `${Math.round((IMAGE_MAX_BYTES / 1024 / 1024) * 10) / 10} MB`,
        ),
      );
      const reply = await replyTo(world, threadId, 'alice: two pictures');
      expect(reply.text).toContain(`saw 1 image, 0 files [img ${digest(small)}]`);
    });

    it('a model without vision: one clear line, and the text is answered without the image', async () => {
      const threadId = await startThread(world, alice.id, 'no eyes');
      await command(world, {
        channelId: threadId,
        userId: mod.id,
        name: 'settings',
        options: { model: 'gpt-3.5-turbo' },
      });
      post(threadId, 'can you see it?', [pngFile('red.png', red)]);
      const reply = await replyTo(world, threadId, 'alice: can you see it?');
      expect(reply.text).toContain('[gpt-3.5-turbo]');
      expect(reply.text).not.toContain('saw 1 image');
      await noticeIn(threadId, '🖼️ This model cannot read images or files');
      // The next turn does not try the image again: the history records the message as it was sent.
      const refusalsBefore = world.openai.requests.filter((r) => r.status === 400).length;
      world.discord.postMessage(threadId, alice.id, 'and text?');
      await replyTo(world, threadId, 'alice: and text?');
      expect(world.openai.requests.filter((r) => r.status === 400).length).toBe(refusalsBefore);
    });

    it('a thread whose model is changed to one without vision after an image: the text is answered, with the line', async () => {
      const threadId = await startThread(world, alice.id, 'eyes closed later');
      post(threadId, 'see this', [pngFile('red.png', red)]);
      expect((await replyTo(world, threadId, 'alice: see this')).text).toContain(seesRed);
      await command(world, {
        channelId: threadId,
        userId: mod.id,
        name: 'settings',
        options: { model: 'gpt-3.5-turbo' },
      });
      world.discord.postMessage(threadId, alice.id, 'text only now');
      const reply = await replyTo(world, threadId, 'alice: text only now');
      expect(reply.text).toContain('[gpt-3.5-turbo]');
      expect(reply.text).not.toContain('saw 1 image');
      await noticeIn(threadId, '🖼️ This model cannot read images or files');
    });
  });
}
