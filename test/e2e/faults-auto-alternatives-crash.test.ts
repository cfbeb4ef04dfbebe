// Automatic alternatives and a crash: the bot is killed (SIGKILL) while the alternatives for a message are being
// generated. After the restart the message is not lost: it gets its alternatives and a ballot, and the thread goes on
// from the winner.
import { afterEach, describe, expect, it } from 'vitest';
import type { ThreadSession } from '../../src/core/model.ts';
import { openStore } from '../../src/store/index.ts';
import type { MessageView } from '../emulators/discord/index.ts';
import { type RecordedRequest, replyFor } from '../emulators/openai/index.ts';
import {
  alternativesIn,
  assistant,
  click,
  command,
  createWorld,
  isStreaming,
  MODEL,
  replies,
  type Said,
  startThread,
  user,
  type World,
  waitForBallot,
} from './harness.ts';

let world: World | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

const ALTERNATIVE = /^\*\*[A-E]\*\* · /;

/** The generation requests for alternatives (Responses without a conversation) that answer `text`. */
function alternativesFor(w: World, text: string): RecordedRequest[] {
  return w.openai.requests.filter(
    (r) => r.route === 'POST /v1/responses' && !r.conversationId && sentTexts(r).at(-1) === text,
  );
}

/** What one request sent the model, in order: its whole input (alternatives are generated from plain input). */
function sentTexts(r: RecordedRequest): string[] {
  const input = (r.body as { input?: unknown } | undefined)?.input;
  if (!Array.isArray(input)) return [];
  return input.map((item: { content?: unknown }) =>
    typeof item.content === 'string'
      ? item.content
      : Array.isArray(item.content)
        ? item.content.map((c: { text?: string }) => c.text ?? '').join('')
        : '',
  );
}

/** The finished alternatives in the thread that answer `message`, once there are `count` of them. */
function finishedAlternatives(w: World, threadId: string, message: MessageView, count: number) {
  return w.discord.waitFor(
    () => {
      // Those of a ballot whose vote opened: a fork cut short by the crash stays in its cancelled ballot, unfinished.
      const found = alternativesIn(w, threadId).filter(
        (m) =>
          ALTERNATIVE.test(m.content) &&
          m.referenceId === message.id &&
          !isStreaming(m) &&
          !w.discord.message(m.id)?.text.startsWith('🚫'),
      );
      return found.length >= count ? found : undefined;
    },
    { timeoutMs: 20_000, message: `${count} finished alternatives to "${message.content}"` },
  );
}

describe('automatic alternatives and a crash', () => {
  it('a message whose alternatives were generating when the bot died gets them, and a ballot, after the restart', async () => {
    const w = await createWorld();
    world = w;
    const bot = await w.startBot({ ALTERNATIVES_COOLDOWN_SECONDS: '0' });
    const alice = w.discord.createUser({ username: 'alice' });
    const mod = w.discord.createUser({ username: 'mod', manageThreads: true });
    const threadId = await startThread(w, alice.id, 'hello');
    const history: Said[] = [user('alice: hello'), assistant(replies(w, threadId)[0]!.text)];
    expect(
      await command(w, {
        channelId: threadId,
        userId: mod.id,
        name: 'settings',
        options: { auto_alternatives: 2 },
      }),
    ).toMatch(/2 for every message/);

    // The model is slow: the alternatives are on their way when the bot dies (the first one; the other starts at
    // its first token, to read the prompt from the provider's cache).
    w.openai.setLatency({ firstTokenMs: 60_000 });
    const surprise = w.discord.postMessage(threadId, alice.id, 'surprise me');
    await w.discord.waitFor(() => alternativesFor(w, 'alice: surprise me').length === 1, {
      timeoutMs: 20_000,
      message: 'the alternatives are being generated',
    });
    await bot.kill();
    w.openai.setLatency({});

    const restarted = await w.startBot({ ALTERNATIVES_COOLDOWN_SECONDS: '0' });
    // The thread is told the first try was cancelled, then the message gets its alternatives and a ballot.
    const cancelled = await w.discord.waitFor(
      () => w.discord.messages(threadId).find((m) => m.content.startsWith('🚫 The vote was cancelled')),
      { timeoutMs: 20_000, message: 'a notice that the alternatives in progress were cancelled' },
    );
    // It says what happens next: the message is answered again (nobody has to ask for the alternatives).
    expect(cancelled.content).toMatch(
      /restarted while it was generating alternatives; the message is answered again/,
    );
    // The live ballot the dead process was streaming into says the vote is off, and nothing in it streams any more.
    const left = await w.discord.waitFor(
      () => w.discord.messages(threadId).find((m) => m.text.startsWith('🚫 **This vote was cancelled')),
      { timeoutMs: 20_000, message: 'the ballot left by the dead process is shown cancelled' },
    );
    expect(isStreaming(w.discord.message(left.id)!)).toBe(false);
    const ballot = await waitForBallot(w, threadId, (m) => m.content.startsWith('🗳'), 20_000);
    expect(ballot.content).toMatch(/Which reply should the thread continue with/);
    history.push(user('alice: surprise me'));
    const expected = replyFor({ model: MODEL, messages: history });
    const alternatives = await finishedAlternatives(w, threadId, surprise, 2);
    expect(alternatives.map((m) => m.content.split('\n')[1])).toEqual([expected, expected]);
    const order = w.discord.messages(threadId).map((m) => m.id);
    // The alternatives came after the notice, in the ballot.
    expect(order.indexOf(cancelled.id)).toBeLessThan(order.indexOf(ballot.id));
    expect(alternatives.map((m) => m.id)).toEqual([ballot.id, ballot.id]);
    // Every try at them sent the model the same history, the message once, at its end.
    const tries = alternativesFor(w, 'alice: surprise me');
    expect(tries).toHaveLength(3); // the first try's first alternative, then both
    for (const request of tries) expect(sentTexts(request)).toEqual(history.map((m) => m.text));
    // The message got no plain reply besides its alternatives.
    expect(
      replies(w, threadId).filter(
        (r) => r.messages[0]!.referenceId === surprise.id && !ALTERNATIVE.test(r.text),
      ),
    ).toEqual([]);

    // The thread goes on from the winner: the next message's alternatives see the whole history, each message once.
    await click(w, ballot, 'A', alice.id);
    await waitForBallot(w, threadId, (m) => m.id === ballot.id && m.content.startsWith('✅'));
    history.push(assistant(expected));
    const next = w.discord.postMessage(threadId, alice.id, 'and then?');
    await waitForBallot(w, threadId, (m) => m.id !== ballot.id && m.content.startsWith('🗳'), 20_000);
    history.push(user('alice: and then?'));
    const nextAlternatives = await finishedAlternatives(w, threadId, next, 2);
    expect(nextAlternatives.map((m) => m.content.split('\n')[1])).toEqual([
      replyFor({ model: MODEL, messages: history }),
      replyFor({ model: MODEL, messages: history }),
    ]);
    const nextTries = alternativesFor(w, 'alice: and then?');
    expect(nextTries).toHaveLength(2);
    for (const request of nextTries) expect(sentTexts(request)).toEqual(history.map((m) => m.text));

    const store = openStore(w.env.STORE_URL!);
    try {
      const stored = (await store.get<ThreadSession>(`thread:${threadId}`))!;
      expect(stored.failed).toEqual([]);
      expect(stored.inbox).toEqual([]);
      expect(stored.vote?.status).toBe('open');
    } finally {
      await store.close();
    }
    expect(restarted.logs.filter((l) => l.level >= 50)).toEqual([]);
  }, 60_000);
});
