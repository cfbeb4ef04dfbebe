// A process that loses its thread's lock (Redis) in the middle of a turn: two bot processes, a short lock ttl, and
// one of them frozen (SIGSTOP) while it streams a reply, for longer than the ttl. The other takes the thread over
// and answers; the frozen one, once it wakes, only says on the reply it was streaming that it was taken over.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { ThreadSession } from '../../src/core/model.ts';
import { openStore } from '../../src/store/index.ts';
import type { MessageView } from '../emulators/discord/index.ts';
import { replyFor } from '../emulators/openai/index.ts';
import { startRedis } from '../redis-server.ts';
import {
  assistant,
  botPids,
  buttonIds,
  conversationHolding,
  createWorld,
  isStreaming,
  lockTroubleAndErrors,
  MODEL,
  overlappingTurns,
  replies,
  type Said,
  startBotWithSession,
  startThreadVia,
  user,
  type World,
} from './harness.ts';

const redis = await startRedis();
const LOCK_TTL_MS = 2000;
/** Longer than the lock's ttl, so the lock expires and the other process takes it meanwhile. */
const PAUSE_MS = 4500;
const TAKEN_OVER = /taken over by another instance/;

let world: World | undefined;
let frozen: number | undefined;
afterEach(async () => {
  // A test that failed during the pause leaves the process frozen: wake it before it is killed.
  if (frozen !== undefined) process.kill(frozen, 'SIGCONT');
  frozen = undefined;
  await world?.close();
  world = undefined;
});
afterAll(() => redis?.stop());

/** The texts of the user messages a POST /v1/responses sent as its input. */
function inputTexts(body: unknown): string[] {
  const input = (body as { input?: unknown } | undefined)?.input;
  if (typeof input === 'string') return [input];
  if (!Array.isArray(input)) return [];
  return input.map((item: { content?: unknown }) =>
    typeof item.content === 'string'
      ? item.content
      : Array.isArray(item.content)
        ? item.content.map((c: { text?: string }) => c.text ?? '').join('')
        : '',
  );
}

describe.skipIf(!redis)('a process that loses its lock', () => {
  it('is taken over mid-turn: every message is answered once, in order, and the woken process stands aside', async () => {
    await redis!.restart();
    const w = await createWorld();
    world = w;
    const env = { STORE_URL: redis!.url, LOCK_TTL_MS: String(LOCK_TTL_MS) };
    const first = await startBotWithSession(w, env);
    const [firstPid] = botPids(w);
    const second = await startBotWithSession(w, env);
    expect(firstPid).toBeDefined();
    expect(botPids(w)).toContain(firstPid);
    const store = openStore(redis!.url);
    const record = async (threadId: string) => (await store.get<ThreadSession>(`thread:${threadId}`))!;
    try {
      const alice = w.discord.createUser({ username: 'alice' });
      const threadId = await startThreadVia(w, alice.id, 'hello', first.session);
      const history: Said[] = [user('alice: hello'), assistant(replies(w, threadId)[0]!.text)];

      // A slow model: the first process's reply to "one" streams for several seconds.
      w.openai.setLatency({ firstTokenMs: 0, tokensPerSecond: 3 });
      const one = w.discord.postMessage(threadId, alice.id, 'one', { via: first.session });
      const streamed = await w.discord.waitFor(
        () =>
          w.discord
            .messages(threadId)
            .find((m) => m.referenceId === one.id && isStreaming(m) && m.content.includes('reply')),
        { timeoutMs: 20_000, message: 'the first process streams its reply to "one"' },
      );
      // "two" waits in the thread's inbox, queued behind "one" by the first process.
      const two = w.discord.postMessage(threadId, alice.id, 'two', { via: first.session });
      await waitUntil(
        async () => (await record(threadId)).inbox.some((m) => m.messageId === two.id),
        '"two" is stored in the inbox',
      );

      // Frozen mid-turn for longer than the lock's ttl.
      process.kill(firstPid!, 'SIGSTOP');
      frozen = firstPid;
      // The other process's turns take a second each, so the frozen one wakes with work still queued.
      w.openai.setLatency({ firstTokenMs: 1000 });
      const three = w.discord.postMessage(threadId, alice.id, 'three', { via: second.session });
      // The other process answers "one" while the first is frozen (which can answer nothing meanwhile).
      await Promise.all([
        sleep(PAUSE_MS), // the deliberate pause itself
        finishedReplyTo(w, threadId, one),
      ]);
      process.kill(firstPid!, 'SIGCONT');
      frozen = undefined;
      // It wakes with the thread's queue not yet done ("three" waits, or is being answered by the other process).
      expect((await record(threadId)).inbox.map((m) => m.text)).toContain('alice: three');

      // The second process answered all three, in order, each once, from the whole history.
      const answers: string[] = [];
      for (const [message, text] of [
        [one, 'alice: one'],
        [two, 'alice: two'],
        [three, 'alice: three'],
      ] as const) {
        const answer = await finishedReplyTo(w, threadId, message);
        history.push(user(text));
        const expected = replyFor({ model: MODEL, messages: history });
        expect(answer.content, `the reply to "${text}"`).toContain(expected);
        history.push(assistant(expected));
        answers.push(answer.id);
      }

      // The woken process says, once, on the reply it was streaming, that it was taken over; no Retry, no Stop.
      const notice = await w.discord.waitFor(
        () => {
          const m = w.discord.message(streamed.id);
          return m && !isStreaming(m) && TAKEN_OVER.test(m.content) ? m : undefined;
        },
        { timeoutMs: 20_000, message: 'the woken process marks the reply it was streaming' },
      );
      expect(buttonIds(notice)).toEqual([]);
      await first.bot.waitForLog((l) => /lost the thread lock|turn failed/.test(l.msg), 10_000);

      // Then a fourth message, through the woken process: it answers it, from the whole history.
      const four = w.discord.postMessage(threadId, alice.id, 'four', { via: first.session });
      const fourth = await finishedReplyTo(w, threadId, four);
      history.push(user('alice: four'));
      const expected = replyFor({ model: MODEL, messages: history });
      expect(fourth.content).toContain(expected);
      history.push(assistant(expected));

      // What people see: one notice in all, on the frozen process's reply; every message answered once, in order.
      const botMessages = w.discord.messages(threadId).filter((m) => m.authorId === w.discord.botUserId);
      expect(botMessages.filter((m) => TAKEN_OVER.test(m.content)).map((m) => m.id)).toEqual([streamed.id]);
      for (const message of [one, two, three, four]) {
        const answering = botMessages.filter(
          (m) => m.referenceId === message.id && !TAKEN_OVER.test(m.content),
        );
        expect(answering, `answers to ${message.content}`).toHaveLength(1);
      }
      expect(botMessages.filter((m) => buttonIds(m).some((b) => b.label.startsWith('Retry')))).toEqual([]);
      expect(replies(w, threadId).filter((r) => r.streaming)).toEqual([]);
      expect([...answers, fourth.id]).toEqual(
        botMessages.filter((m) => [...answers, fourth.id].includes(m.id)).map((m) => m.id),
      );

      // Nothing went to the failed list, nothing is left waiting.
      const stored = await record(threadId);
      expect(stored.failed).toEqual([]);
      expect(stored.inbox).toEqual([]);

      // What the model was sent: "one" twice (the frozen turn, then the takeover), every other message once; the
      // conversation holds each exchange once, in order, and no two turns ran on it at once.
      const sent = w.openai.requests
        .filter((r) => r.route === 'POST /v1/responses' && r.status === 200)
        .flatMap((r) => inputTexts(r.body));
      expect(sent).toEqual([
        'alice: hello',
        'alice: one',
        'alice: one',
        'alice: two',
        'alice: three',
        'alice: four',
      ]);
      expect(conversationHolding(w, 'alice: hello')).toEqual(history.map((m) => m.text));
      expect(overlappingTurns(w)).toEqual([]);
      expect(lockTroubleAndErrors(second.bot)).toEqual([]);
      expect(first.bot.logs.filter((l) => l.level >= 50)).toEqual([]);
    } finally {
      await store.close();
    }
  }, 60_000);
});

/** Polls an asynchronous condition (a store read) until it holds. */
async function waitUntil(condition: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(50); // poll
  }
}

/** The first message of the finished reply that answers `message` (not the frozen process's taken-over reply). */
function finishedReplyTo(w: World, threadId: string, message: MessageView): Promise<MessageView> {
  return w.discord.waitFor(
    () =>
      w.discord
        .messages(threadId)
        .find(
          (m) =>
            m.authorId === w.discord.botUserId &&
            m.referenceId === message.id &&
            !isStreaming(m) &&
            !TAKEN_OVER.test(m.content),
        ),
    { timeoutMs: 25_000, message: `a finished reply to "${message.content}"` },
  );
}
