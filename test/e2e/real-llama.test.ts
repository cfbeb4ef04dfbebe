// The bot (BACKEND=chat) against a real OpenAI-compatible server: llama.cpp's own llama-server with a tiny model of
// random weights (test/real-llama-server.ts). Its replies are gibberish, so nothing here depends on what they say:
// the assertions compare what the person reads with what the server streamed, what the bot sent in its next request,
// and replies to one prompt at temperature 0 with each other. A recording proxy between the bot and the server shows
// the requests. Skipped, with the reason, when the server cannot be set up.

import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MessageView } from '../emulators/discord/index.ts';
import { startLlamaServer } from '../real-llama-server.ts';
import { createRecordingProxy, type ProxiedRequest, type RecordingProxy } from '../recording-proxy.ts';
import {
  alternativesIn,
  type BotProcess,
  buttonIds,
  click,
  command,
  createWorld,
  openVote,
  replies,
  startThread,
  type World,
  waitForBallot,
  waitForReplies,
} from './harness.ts';

/** Two slots: `n` above 2 is refused, as llama-server refuses `n` above its slot count. */
const SLOTS = 2;
const llama = await startLlamaServer({ slots: SLOTS, maxTokens: 24 });
afterAll(() => llama.server?.stop());

type Message = { role: string; content: string };
const said = (role: string, content: string): Message => ({ role, content });

describe.skipIf(!llama.server)(
  `the bot on a real llama-server${llama.skipped ? ` (SKIPPED: ${llama.skipped})` : ''}`,
  () => {
    let world: World;
    let bot: BotProcess;
    let proxy: RecordingProxy;
    let alice: { id: string };
    let bob: { id: string };
    let mod: { id: string };
    let env: Record<string, string>;

    beforeAll(async () => {
      proxy = await createRecordingProxy(llama.server!.origin);
      world = await createWorld();
      env = {
        BACKEND: 'chat',
        OPENAI_BASE_URL: proxy.baseURL,
        OPENAI_MODEL: llama.server!.model,
        ALTERNATIVES_COOLDOWN_SECONDS: '0',
      };
      bot = await world.startBot(env);
      alice = world.discord.createUser({ username: 'alice' });
      bob = world.discord.createUser({ username: 'bob' });
      mod = world.discord.createUser({ username: 'mod', manageThreads: true });
    }, 60_000);
    afterAll(async () => {
      await world?.close();
      await proxy?.close();
    });

    /** The Chat Completions requests the server was sent, from `since` on. */
    const generations = (since = 0) =>
      proxy.requests.slice(since).filter((r) => r.method === 'POST' && r.path === '/v1/chat/completions');
    const messagesOf = (r: ProxiedRequest) => (r.body as { messages: Message[] }).messages;
    const nOf = (r: ProxiedRequest) => (r.body as { n?: number }).n ?? 1;
    /** The answered requests whose last message is `text` (what the bot asked to be answered). */
    const answering = (text: string) =>
      generations().filter((r) => r.status === 200 && messagesOf(r).at(-1)?.content === text);

    /** The finished reply to a posted message. */
    const replyTo = (threadId: string, posted: MessageView) =>
      world.discord.waitFor(
        () => replies(world, threadId).find((r) => r.messages[0]!.referenceId === posted.id && !r.streaming),
        { message: `no finished reply to "${posted.content}"` },
      );

    function alternativesOf(threadId: string): MessageView[] {
      return alternativesIn(world, threadId);
    }
    /** An alternative as shown: its text (between the header and the usage line) and its token counts. */
    function shown(message: MessageView) {
      const lines = message.content.split('\n');
      const usage = lines.at(-1)!.match(/^-# (\d+) in · (\d+) out tokens$/);
      return {
        text: lines.slice(1, -1).join('\n'),
        usage: usage ? { in: Number(usage[1]), out: Number(usage[2]) } : undefined,
      };
    }

    it('streams a reply into the thread, and sends the earlier turns with the next message', async () => {
      // Paced so that the reply arrives as slowly as a real model's, and the bot shows it while it comes.
      proxy.pace(60);
      const before = world.discord.requests.length;
      let threadId: string;
      try {
        threadId = await startThread(world, alice.id, 'plan a trip to Lisbon');
      } finally {
        proxy.pace(0);
      }
      const [first] = replies(world, threadId);
      const [asked] = answering('alice: plan a trip to Lisbon');
      expect(asked!.choices[0]!.text).not.toBe('');
      expect(first!.text).toBe(asked!.choices[0]!.text);
      const edits = world.discord.requests
        .slice(before)
        .filter(
          (r) => r.route.startsWith('PATCH /channels/:channel_id/messages') && r.path.includes(threadId),
        );
      expect(edits.length).toBeGreaterThan(0);

      world.discord.postMessage(threadId, bob.id, 'what about food?');
      const [, second] = await waitForReplies(world, threadId, 2);
      const [next] = answering('bob: what about food?');
      expect(messagesOf(next!)).toEqual([
        said('user', 'alice: plan a trip to Lisbon'),
        said('assistant', first!.text),
        said('user', 'bob: what about food?'),
      ]);
      expect(second!.text).toBe(next!.choices[0]!.text);
    });

    it('answers a burst of messages once each, in order, each after the replies before it', async () => {
      const threadId = await startThread(world, alice.id, 'count with me');
      const posted = [1, 2, 3, 4].map((n) => world.discord.postMessage(threadId, alice.id, `number ${n}`));
      const found = await waitForReplies(world, threadId, 5, 30_000);
      expect(found).toHaveLength(5);
      expect(found.slice(1).map((r) => r.messages[0]!.referenceId)).toEqual(posted.map((m) => m.id));
      const history = [said('user', 'alice: count with me'), said('assistant', found[0]!.text)];
      for (const [i, n] of [1, 2, 3, 4].entries()) {
        const asked = answering(`alice: number ${n}`);
        expect(asked).toHaveLength(1);
        history.push(said('user', `alice: number ${n}`));
        expect(messagesOf(asked[0]!)).toEqual(history);
        history.push(said('assistant', found[i + 1]!.text));
      }
    });

    it('asks for alternatives within the slot count in one request, and the winner continues the thread', async () => {
      const threadId = await startThread(world, alice.id, 'name a colour');
      const since = proxy.requests.length;
      const ballot = await openVote(world, threadId, alice.id, {
        count: 2,
        prompt: 'pick one',
        temperature: 0,
      });
      const asked = generations(since);
      expect(asked.map((r) => [r.status, nOf(r)])).toEqual([[200, 2]]);
      const [a, b] = alternativesOf(threadId).map(shown);
      // One prompt at temperature 0: the same text twice, as the server streamed it.
      expect(a!.text).not.toBe('');
      expect(b!.text).toBe(a!.text);
      expect(asked[0]!.choices.map((c) => c.text)).toEqual([a!.text, b!.text]);
      // Each alternative shows its own tokens (llama-server counts each choice apart); the prompt is counted once.
      const [usageA, usageB] = asked[0]!.choices.map((c) => c.usage!);
      expect(a!.usage).toEqual({ in: usageA!.prompt_tokens, out: usageA!.completion_tokens });
      expect(b!.usage).toEqual({ in: 0, out: usageB!.completion_tokens });

      expect((await click(world, ballot, 'B', bob.id)).content).toMatch(/B\*\* wins/);
      await waitForBallot(world, threadId, (m) => m.id === ballot.id && m.content.startsWith('✅'));
      await replyTo(threadId, world.discord.postMessage(threadId, alice.id, 'and now?'));
      expect(messagesOf(answering('alice: and now?')[0]!).slice(-3)).toEqual([
        said('user', 'alice: pick one'),
        said('assistant', b!.text),
        said('user', 'alice: and now?'),
      ]);
    });

    it('asks for more alternatives than the server has slots in requests it takes, and all of them can win', async () => {
      const threadId = await startThread(world, alice.id, 'four ways');
      const since = proxy.requests.length;
      const ballot = await openVote(world, threadId, alice.id, { count: 4, prompt: 'go on', temperature: 0 });
      const asked = generations(since);
      // Refused once, the first time the bot meets the limit; then requests of the slot count, at once.
      const refused = asked.filter((r) => r.status !== 200);
      expect(refused.map((r) => [r.status, nOf(r)])).toEqual([[400, 4]]);
      expect(refused[0]!.response).toContain("Field 'n': Value must be between 1 <= value <= 2");
      const answered = asked.filter((r) => r.status === 200);
      expect(answered.every((r) => nOf(r) === SLOTS)).toBe(true);
      expect(answered.reduce((sum, r) => sum + nOf(r), 0)).toBe(4);
      const alternatives = alternativesOf(threadId).map(shown);
      expect(alternatives).toHaveLength(4);
      expect(new Set(alternatives.map((x) => x.text)).size).toBe(1);
      expect(alternatives[0]!.text).not.toBe('');
      // Each with the tokens the server counted for it (the two requests may have arrived in either order).
      const sorted = (counts: number[]) => counts.sort((x, y) => x - y);
      expect(sorted(alternatives.map((x) => x.usage!.out))).toEqual(
        sorted(answered.flatMap((r) => r.choices.map((c) => c.usage!.completion_tokens))),
      );
      expect(buttonIds(ballot).map((x) => x.label)).toEqual([
        'A · 0',
        'Read A in full',
        'B · 0',
        'Read B in full',
        'C · 0',
        'Read C in full',
        'D · 0',
        'Read D in full',
        'Close vote',
        'Moderator pick…',
      ]);
      await click(world, ballot, 'D', bob.id);
      const closed = await waitForBallot(
        world,
        threadId,
        (m) => m.id === ballot.id && m.content.startsWith('✅'),
      );
      expect(closed.content).toMatch(/D wins/);
      await replyTo(threadId, world.discord.postMessage(threadId, bob.id, 'so?'));
      expect(messagesOf(answering('bob: so?')[0]!).slice(-2)).toEqual([
        said('assistant', alternatives[3]!.text),
        said('user', 'bob: so?'),
      ]);
    });

    it('lets a moderator list the branches and switch to a losing one, whose history the next reply gets', async () => {
      const threadId = await startThread(world, alice.id, 'branching out');
      const [first] = replies(world, threadId);
      const ballot = await openVote(world, threadId, alice.id, { count: 2, prompt: 'fork here' });
      await click(world, ballot, 'A', alice.id);
      await waitForBallot(world, threadId, (m) => m.id === ballot.id && m.content.startsWith('✅'));
      const [, loser] = alternativesOf(threadId).map(shown);

      const list = await command(world, {
        channelId: threadId,
        userId: mod.id,
        name: 'branch',
        subcommand: 'list',
      });
      for (const id of ['b1', 'b2', 'b3']) expect(list).toContain(`**${id}**`);
      expect(list).toMatch(/▶ \*\*b2\*\* alternative A/);
      expect(
        await command(world, {
          channelId: threadId,
          userId: mod.id,
          name: 'branch',
          subcommand: 'switch',
          options: { branch: 'b3' },
        }),
      ).toMatch(/Switched to b3/);
      await replyTo(threadId, world.discord.postMessage(threadId, alice.id, 'after the switch'));
      expect(messagesOf(answering('alice: after the switch')[0]!)).toEqual([
        said('user', 'alice: branching out'),
        said('assistant', first!.text),
        said('user', 'alice: fork here'),
        said('assistant', loser!.text),
        said('user', 'alice: after the switch'),
      ]);
    });

    it('says a message is too long for the model, and the thread goes on without it', async () => {
      const threadId = await startThread(world, alice.id, 'read this');
      const [first] = replies(world, threadId);
      // About 6000 tokens of this model's: beyond the 4096 a slot reads. As an attachment, since a Discord message
      // holds 2000 characters.
      const notes = Array.from({ length: 3000 }, (_, i) => `note ${i * 7919}`).join(' ');
      const since = proxy.requests.length;
      const long = world.discord.postMessage(threadId, alice.id, 'summarise the notes', {
        attachments: [{ filename: 'notes.txt', content: notes, contentType: 'text/plain' }],
      });
      const failed = await replyTo(threadId, long);
      expect(failed.text).toMatch(
        /⚠️ This message is longer than the model can read \(\d+ tokens were sent; it reads at most 4096\)\. Send a shorter one\./,
      );
      expect(generations(since).map((r) => r.status)).toEqual([400]);
      expect(generations(since)[0]!.response).toContain('exceed_context_size_error');

      const reply = await replyTo(
        threadId,
        world.discord.postMessage(threadId, alice.id, 'a short one then'),
      );
      // The recording proxy reads the stream's end a moment after the bot does: wait for it.
      const asked = await world.discord.waitFor(() =>
        answering('alice: a short one then').find((r) => r.choices?.[0] !== undefined),
      );
      expect(messagesOf(asked)).toEqual([
        said('user', 'alice: read this'),
        said('assistant', first!.text),
        said('user', 'alice: a short one then'),
      ]);
      expect(reply.text).toBe(asked.choices[0]!.text);
    });

    // Last: it restarts the bot.
    it('answers the messages that were waiting when the bot died, once each, in order, after a restart', async () => {
      const threadId = await startThread(world, alice.id, 'hold on');
      proxy.hold();
      const posted = [1, 2, 3].map((n) => world.discord.postMessage(threadId, bob.id, `waiting ${n}`));
      try {
        // The first is being answered (its request is held); the others are stored, waiting their turn.
        const held = await world.discord.waitFor(
          () => generations().find((r) => messagesOf(r).at(-1)?.content === 'bob: waiting 1'),
          { message: 'the first message was not asked' },
        );
        await world.discord.waitFor(() => posted.every((m) => stored(world, m.id)) || undefined, {
          message: 'the messages were not stored',
        });
        await bot.kill();
        // Released only once the proxy saw the dead bot's connection go, so the held request is dropped.
        await world.discord.waitFor(() => held.abandoned || undefined, {
          message: 'the request was not dropped',
        });
      } finally {
        proxy.release();
      }
      bot = await world.startBot(env);
      const found = await waitForReplies(world, threadId, 4, 30_000);
      expect(found).toHaveLength(4);
      expect(found.slice(1).map((r) => r.messages[0]!.referenceId)).toEqual(posted.map((m) => m.id));
      for (const [i, n] of [1, 2, 3].entries()) {
        const [asked, ...again] = answering(`bob: waiting ${n}`);
        expect(again).toEqual([]);
        expect(found[i + 1]!.text).toBe(asked!.choices[0]!.text);
      }
      expect(bot.logs.filter((l) => l.level >= 50)).toEqual([]);
    });
  },
);

/** True when the bot's SQLite store holds `messageId` anywhere (a waiting message is kept in its thread's record). */
function stored(world: World, messageId: string): boolean {
  try {
    const db = new DatabaseSync(join(world.dir, 'threadfork.sqlite'), { readOnly: true });
    try {
      const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as {
        name: string;
      }[];
      return tables.some(({ name }) =>
        JSON.stringify(db.prepare(`SELECT * FROM "${name.replaceAll('"', '""')}"`).all()).includes(messageId),
      );
    } finally {
      db.close();
    }
  } catch {
    // The bot is writing just now: look again.
    return false;
  }
}
