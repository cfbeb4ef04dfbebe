// Start-up survives threads it can no longer write to: the bot dies while it forks two threads, a moderator then
// locks them in Discord (one archived and locked, one locked but open), and the bot starts again. It comes up, cleans
// the stuck votes out of their records, and every other thread goes on; once a thread is reopened, it goes on too,
// without the abandoned fork in its history.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { ThreadSession } from '../../src/core/model.ts';
import { openStore } from '../../src/store/index.ts';
import { replyFor } from '../emulators/openai/index.ts';
import {
  assistant,
  conversationHolding,
  createWorld,
  MODEL,
  replies,
  replyTo,
  type Said,
  startThread,
  user,
  type World,
} from './harness.ts';

let world: World | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

describe('start-up with threads it can no longer write to', () => {
  it('comes up, cancels their stuck votes, and the other threads keep working', async () => {
    const w = await createWorld();
    world = w;
    const env = { ALTERNATIVES_COOLDOWN_SECONDS: '0' };
    const bot = await w.startBot(env);
    const alice = w.discord.createUser({ username: 'alice' });
    const archived = await startThread(w, alice.id, 'first thread');
    const locked = await startThread(w, alice.id, 'second thread');
    const open = await startThread(w, alice.id, 'third thread');
    const said = (threadId: string, text: string): Said[] => [
      user(`alice: ${text}`),
      assistant(replies(w, threadId)[0]!.text),
    ];
    const histories = {
      archived: said(archived, 'first thread'),
      locked: said(locked, 'second thread'),
      open: said(open, 'third thread'),
    };

    // The model hangs: two forks are generating, and a message in the third thread is being answered, when the bot dies.
    w.openai.setLatency({ firstTokenMs: 60_000 });
    const started = w.openai.requests.length;
    for (const threadId of [archived, locked])
      w.discord.runCommand({
        channelId: threadId,
        userId: alice.id,
        name: 'alternatives',
        options: { count: 2, prompt: 'pick one' },
      });
    w.discord.postMessage(open, alice.id, 'still there?');
    // Each fork's first alternative is on its way (the other starts at its first token, which never comes).
    await w.discord.waitFor(
      () => w.openai.requests.slice(started).filter((r) => r.route === 'POST /v1/responses').length === 3,
      { timeoutMs: 20_000, message: 'two first alternatives and one turn are on their way' },
    );
    await bot.kill();
    w.openai.setLatency({});

    const store = openStore(w.env.STORE_URL!);
    const record = async (threadId: string) => (await store.get<ThreadSession>(`thread:${threadId}`))!;
    try {
      for (const threadId of [archived, locked])
        expect((await record(threadId)).vote?.status).toBe('generating');
      // A moderator closes two of the threads meanwhile.
      w.discord.archiveThread(archived, { locked: true });
      w.discord.lockThread(locked);

      const restarted = await w.startBot(env); // resolves on 'threadfork is running', rejects if the bot exits
      // The third thread's message is answered, from its whole history.
      const answer = await replyTo(w, open, 'alice: still there?', 20_000);
      histories.open.push(user('alice: still there?'));
      expect(answer.text).toBe(replyFor({ model: MODEL, messages: histories.open }));
      histories.open.push(assistant(answer.text));

      // The stuck votes are cancelled in their records, although their threads could not be told.
      await waitUntil(async () => {
        const votes = await Promise.all(
          [archived, locked].map(async (id) => (await record(id)).vote?.status),
        );
        return votes.every((status) => status === 'cancelled');
      }, 'both stuck votes are cancelled');
      for (const threadId of [archived, locked]) {
        const stored = await record(threadId);
        expect(stored.vote?.cancelReason).toBe('restart');
        expect(stored.activeBranchId).toBe('b1');
        expect(Object.keys(stored.branches)).toEqual(['b1']);
        expect(stored.inbox).toEqual([]);
        expect(stored.failed).toEqual([]);
      }
      // Nothing was posted in the closed threads after the restart; the bot says why it could not.
      for (const threadId of [archived, locked])
        expect(w.discord.messages(threadId).filter((m) => m.content.startsWith('🚫'))).toEqual([]);
      const cannotTell = restarted.logs.filter((l) =>
        /could not tell the thread the vote was cancelled/.test(l.msg),
      );
      expect(cannotTell.map((l) => l.threadId).sort()).toEqual([archived, locked].sort());
      expect(restarted.logs.filter((l) => l.level >= 50)).toEqual([]);

      // The bot keeps running, and the open thread goes on.
      w.discord.postMessage(open, alice.id, 'and now?');
      const later = await replyTo(w, open, 'alice: and now?');
      histories.open.push(user('alice: and now?'));
      expect(later.text).toBe(replyFor({ model: MODEL, messages: histories.open }));
      histories.open.push(assistant(later.text));
      expect(conversationHolding(w, 'alice: third thread')).toEqual(histories.open.map((m) => m.text));

      // Reopened by the moderator, each closed thread goes on from its history, without the abandoned fork.
      w.discord.unarchiveThread(archived);
      w.discord.lockThread(archived, false);
      w.discord.lockThread(locked, false);
      for (const [threadId, history] of [
        [archived, histories.archived],
        [locked, histories.locked],
      ] as const) {
        w.discord.postMessage(threadId, alice.id, 'back again');
        const reply = await replyTo(w, threadId, 'alice: back again');
        history.push(user('alice: back again'));
        expect(reply.text).toBe(replyFor({ model: MODEL, messages: history }));
        history.push(assistant(reply.text));
        expect(conversationHolding(w, history[0]!.text)).toEqual(history.map((m) => m.text));
      }
      expect(restarted.logs.filter((l) => l.level >= 50)).toEqual([]);
    } finally {
      await store.close();
    }
  }, 60_000);
});

/** Polls an asynchronous condition (a store read) until it holds. */
async function waitUntil(condition: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(50); // poll
  }
}
