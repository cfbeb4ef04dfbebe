import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackendKind } from '../../../src/core/model.ts';
import { splitMessage } from '../../../src/discord/split-message.ts';
import { replyFor } from '../../emulators/openai/index.ts';
import {
  assistant,
  type BotProcess,
  conversationHolding,
  createWorld,
  isStreaming,
  MODEL,
  replies,
  startThread,
  user,
  type World,
  waitForReplies,
} from '../harness.ts';
import type { ScenarioOptions } from './options.ts';

/** The chat scenarios (issue: chat in threads), run against one backend. */
export function chatScenarios(backend: BackendKind, options: ScenarioOptions = {}): void {
  let world: World;
  let bot: BotProcess;
  let alice: { id: string; username: string };
  let bob: { id: string; username: string };

  beforeAll(async () => {
    world = await createWorld();
    bot = await world.startBot({ BACKEND: backend, ...options.env?.() });
    alice = world.discord.createUser({ username: 'alice' });
    bob = world.discord.createUser({ username: 'bob' });
  });
  afterAll(() => world.close());

  describe(`chat in threads (${backend} backend${options.label ? `, ${options.label}` : ''})`, () => {
    it('answers each message from the whole history, and the conversation holds the items in order', async () => {
      const threadId = await startThread(world, alice.id, 'plan a trip to Lisbon');
      const history = [user('alice: plan a trip to Lisbon')];
      const first = replyFor({ model: MODEL, messages: history });
      expect(replies(world, threadId)[0]!.text).toBe(first);
      history.push(assistant(first));

      world.discord.postMessage(threadId, bob.id, 'what about food?');
      const [, second] = await waitForReplies(world, threadId, 2);
      history.push(user('bob: what about food?'));
      expect(second!.text).toBe(replyFor({ model: MODEL, messages: history }));
      history.push(assistant(second!.text));

      world.discord.postMessage(threadId, alice.id, 'and museums');
      const third = (await waitForReplies(world, threadId, 3))[2]!;
      history.push(user('alice: and museums'));
      expect(third.text).toBe(replyFor({ model: MODEL, messages: history }));
      history.push(assistant(third.text));
      if (backend === 'conversations') {
        expect(conversationHolding(world, 'plan a trip to Lisbon')).toEqual(history.map((m) => m.text));
      }
      // Each reply answers (references) the message it replies to.
      expect(world.discord.message(third.messages[0]!.referenceId!)?.content).toBe('and museums');
    });

    it('answers five messages posted at once, in order, without a lock error at OpenAI', async () => {
      const threadId = await startThread(world, alice.id, 'count with me');
      for (const n of [1, 2, 3, 4, 5]) world.discord.postMessage(threadId, alice.id, `number ${n}`);
      const found = await waitForReplies(world, threadId, 6);
      expect(found.slice(1).map((r) => r.text.match(/to "alice: (number \d)"/)?.[1])).toEqual([
        'number 1',
        'number 2',
        'number 3',
        'number 4',
        'number 5',
      ]);
      expect(world.openai.requests.filter((r) => r.status === 400)).toEqual([]);
    });

    it('runs twenty threads in parallel, each in order', async () => {
      world.openai.setLatency({ firstTokenMs: 200 });
      try {
        const threads = await Promise.all(
          Array.from({ length: 20 }, (_, i) => startThread(world, bob.id, `thread ${i}`)),
        );
        for (const threadId of threads) {
          world.discord.postMessage(threadId, bob.id, 'first');
          world.discord.postMessage(threadId, bob.id, 'second');
        }
        for (const threadId of threads) {
          const found = await waitForReplies(world, threadId, 3, 30_000);
          expect(found.map((r) => r.text.match(/to "bob: ([^"]+)"/)?.[1])).toEqual([
            expect.stringMatching(/^thread \d+$/),
            'first',
            'second',
          ]);
        }
        // Turns of different threads overlapped at the provider; turns of one conversation never did.
        const turns = world.openai.requests.filter(
          (r) =>
            (r.route === 'POST /v1/responses' || r.route === 'POST /v1/chat/completions') && r.status === 200,
        );
        const overlapping = (a: (typeof turns)[number], b: (typeof turns)[number]) =>
          a.startedAt < (b.endedAt ?? 0) && b.startedAt < (a.endedAt ?? 0);
        expect(turns.some((a) => turns.some((b) => a !== b && overlapping(a, b)))).toBe(true);
        if (backend === 'conversations') {
          expect(
            turns.some((a) =>
              turns.some((b) => a !== b && a.conversationId === b.conversationId && overlapping(a, b)),
            ),
          ).toBe(false);
        }
      } finally {
        world.openai.setLatency({ firstTokenMs: 0 });
      }
    });

    it('streams a 6000-character reply with code into valid messages, fences balanced, within the edit budget', async () => {
      world.openai.setLatency({ tokensPerSecond: 1500 });
      try {
        const threadId = await startThread(world, alice.id, 'show me code');
        const requestsBefore = world.discord.requests.length;
        world.discord.postMessage(threadId, alice.id, '!long 6000');
        const reply = (await waitForReplies(world, threadId, 2))[1]!;
        expect(reply.messages.length).toBeGreaterThanOrEqual(3);
        for (const message of reply.messages) {
          expect(message.content.length).toBeLessThanOrEqual(2000);
          expect((message.content.match(/^\s*```/gm) ?? []).length % 2).toBe(0);
        }
        const calls = world.discord.requests.slice(requestsBefore);
        expect(calls.filter((r) => r.status === 429)).toEqual([]);
        const edits = calls
          .filter(
            (r) => r.route.startsWith('PATCH /channels/:channel_id/messages') && r.path.includes(threadId),
          )
          .map((r) => r.at);
        expect(edits.length).toBeGreaterThan(0);
        // Never more than 5 edits in any 5 s window of the thread.
        for (const at of edits)
          expect(edits.filter((t) => t >= at && t < at + 5000).length).toBeLessThanOrEqual(5);
        const expected = replyFor({
          model: MODEL,
          messages: [
            user('alice: show me code'),
            assistant(replies(world, threadId)[0]!.text),
            user('alice: !long 6000'),
          ],
        });
        expect(reply.messages.map((m) => m.content)).toEqual(splitMessage(expected));
      } finally {
        world.openai.setLatency({ tokensPerSecond: Number.POSITIVE_INFINITY });
      }
    });

    it('never lets model output ping anyone, and hides think blocks', async () => {
      const threadId = await startThread(world, alice.id, 'hello');
      world.discord.postMessage(threadId, alice.id, '!mention !think');
      const reply = (await waitForReplies(world, threadId, 2))[1]!;
      expect(reply.text).toContain('@everyone');
      expect(reply.text).not.toMatch(/<think>|hidden reasoning/);
      for (const message of world.discord
        .messages(threadId)
        .filter((m) => m.authorId === world.discord.botUserId)) {
        expect(message.pinged).toEqual({ users: [], roles: [], everyone: false });
      }
    });

    it('keeps the text of attachments in the input', async () => {
      const threadId = await startThread(world, alice.id, 'read this');
      world.discord.postMessage(threadId, alice.id, 'summarise the notes', {
        attachments: [
          { filename: 'notes.txt', content: 'the secret ingredient is cardamom', contentType: 'text/plain' },
        ],
      });
      await waitForReplies(world, threadId, 2);
      const sent = world.openai.requests.filter((r) =>
        JSON.stringify(r.body).includes('summarise the notes'),
      );
      expect(sent).toHaveLength(1);
      expect(JSON.stringify(sent[0]!.body)).toMatch(
        /\[attachment notes\.txt\]\\nthe secret ingredient is cardamom/,
      );
    });

    it('makes an existing thread managed with /chat, and shows typing before the first words', async () => {
      const threadId = world.discord.createThread({
        parentId: world.discord.channelId,
        name: 'our plans',
        ownerId: alice.id,
      });
      const confirmation = await world.discord
        .runCommand({ channelId: threadId, userId: alice.id, name: 'chat' })
        .response();
      expect(confirmation.content).toMatch(/now a conversation with the model/);
      const before = world.discord.requests.length;
      world.openai.setLatency({ firstTokenMs: 800 });
      world.discord.postMessage(threadId, bob.id, 'are we going?');
      const [reply] = await waitForReplies(world, threadId, 1).finally(() =>
        world.openai.setLatency({ firstTokenMs: 0 }),
      );
      expect(reply!.text).toContain('bob: are we going?');
      const calls = world.discord.requests.slice(before).filter((r) => r.path.includes(threadId));
      const typing = calls.findIndex((r) => r.route === 'POST /channels/:channel_id/typing');
      const posted = calls.findIndex((r) => r.route === 'POST /channels/:channel_id/messages');
      expect(typing).toBeGreaterThan(-1);
      expect(typing).toBeLessThan(posted);
    });

    it('starts a thread when mentioned in a channel, and ignores threads it does not manage', async () => {
      const mention = world.discord.postMessage(
        world.discord.channelId,
        alice.id,
        `<@${world.discord.botUserId}> tell me a joke`,
      );
      const thread = await world.discord.waitFor(() =>
        world.discord.threadsOf(world.discord.channelId).find((t) => t.name.includes('tell me a joke')),
      );
      const [reply] = await waitForReplies(world, thread.id, 1);
      expect(reply!.text).toContain('alice: tell me a joke');
      expect(mention.id).toBeDefined();

      const unmanaged = world.discord.createThread({
        parentId: world.discord.channelId,
        name: 'humans only',
        ownerId: bob.id,
      });
      world.discord.postMessage(unmanaged, bob.id, 'just us here');
      // Post in a managed thread afterwards: once that is answered, the unmanaged message was seen and ignored.
      world.discord.postMessage(thread.id, alice.id, 'another');
      await waitForReplies(world, thread.id, 2);
      expect(world.discord.messages(unmanaged).filter((m) => m.authorId === world.discord.botUserId)).toEqual(
        [],
      );
    });

    it('stops a streaming reply with its Stop button, keeping and marking the partial text', async () => {
      world.openai.setLatency({ tokensPerSecond: 40 });
      try {
        const threadId = await startThread(world, alice.id, 'go on');
        world.discord.postMessage(threadId, alice.id, '!tokens 400');
        const streaming = await world.discord.waitFor(() =>
          world.discord.messages(threadId).find(isStreaming),
        );
        const stop = JSON.stringify(streaming.components).match(/"(stop:[^"]+)"/)![1]!;
        // Someone else may not stop it.
        const refused = await world.discord
          .clickButton({ messageId: streaming.id, customId: stop, userId: bob.id })
          .response();
        expect(refused.content).toMatch(/Only the person who asked/);
        world.discord.clickButton({ messageId: streaming.id, customId: stop, userId: alice.id });
        const reply = (await waitForReplies(world, threadId, 2))[1]!;
        expect(reply.text).toContain('stopped');
        expect(reply.messages.some(isStreaming)).toBe(false);
      } finally {
        world.openai.setLatency({ tokensPerSecond: Number.POSITIVE_INFINITY });
      }
      expect(bot.logs.filter((l) => l.level >= 50)).toEqual([]);
    });
  });
}
