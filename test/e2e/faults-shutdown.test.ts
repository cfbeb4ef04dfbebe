// Issue 12, case 3: SIGTERM lets running work end cleanly (finished, or "stopped"), in Discord and in history.
import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import { replyFor } from '../emulators/openai/index.ts';
import {
  alternativesIn,
  alternativeText,
  answersTo,
  isGeneration,
  ROOMY,
  repliesTo,
  requestsMentioning,
  say,
  sentMessages,
} from './fault-probes.ts';
import {
  assistant,
  type BotProcess,
  click,
  command,
  conversationHolding,
  createWorld,
  isStreaming,
  MODEL,
  openVote,
  replies,
  replyTo,
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

const STOPPED = '*⏹ stopped: the bot restarted*';
const CURSOR = '▌';

async function setUp(env: Record<string, string>) {
  world = await createWorld({ discord: ROOMY });
  const bot = await world.startBot({ ALTERNATIVES_COOLDOWN_SECONDS: '0', ...env });
  const alice = world.discord.createUser({ username: 'alice' });
  return { w: world, bot, alice };
}

/** The reply (finished or not) that answers the message `messageId`. */
function replyToMessage(w: World, threadId: string, messageId: string) {
  return replies(w, threadId).find((r) => r.messages[0]!.referenceId === messageId);
}

/** Waits until the reply to `messageId` is streaming and shows at least `words` words. */
function streamingReply(w: World, threadId: string, messageId: string, words = 3) {
  return w.discord.waitFor(
    () => {
      const reply = replyToMessage(w, threadId, messageId);
      return reply?.streaming && reply.text.split(' ').length > words ? reply : undefined;
    },
    { timeoutMs: 15_000, message: 'the reply streams' },
  );
}

/** SIGTERM; resolves with the exit code and how long the bot took to exit. */
async function terminate(bot: BotProcess): Promise<{ code: number | null; ms: number }> {
  const start = performance.now();
  await bot.stop();
  return { code: await bot.exited, ms: performance.now() - start };
}

describe('SIGTERM', () => {
  it('ends a streaming reply as stopped after a short grace, refuses the fork waiting behind it, and the next turn is sent the part people saw', async () => {
    const { w, bot, alice } = await setUp({
      SHUTDOWN_GRACE_SECONDS: '1',
      ALTERNATIVES_COOLDOWN_SECONDS: '600',
    });
    const threadId = await startThread(w, alice.id, 'hello');
    const history: Said[] = [user('alice: hello'), assistant(replies(w, threadId)[0]!.text)];

    w.openai.setLatency({ tokensPerSecond: 10 });
    const long = w.discord.postMessage(threadId, alice.id, '!tokens 300');
    await streamingReply(w, threadId, long.id);
    // Asked while the reply runs: the fork waits for it on the thread's worker.
    const asked = w.discord.runCommand({
      channelId: threadId,
      userId: alice.id,
      name: 'alternatives',
      options: { count: 2, prompt: 'not now' },
    });
    await asked.acked();
    const stopped = await terminate(bot);
    w.openai.setLatency({});
    expect(stopped.code).toBe(0);
    // The grace, then the reply's last edits within Discord's edit budget for the thread (about 5 s).
    expect(stopped.ms).toBeLessThan(15_000);

    // What people see: the part that was written, marked stopped, no Stop button and no cursor left.
    const reply = replyToMessage(w, threadId, long.id)!;
    expect(reply.messages).toHaveLength(1);
    expect(reply.streaming).toBe(false);
    expect(reply.text).not.toContain(CURSOR);
    expect(reply.text.endsWith(`\n${STOPPED}`)).toBe(true);
    const partial = reply.text.slice(0, -`\n${STOPPED}`.length);
    const full = replyFor({ model: MODEL, messages: [...history, user('alice: !tokens 300')] });
    expect(partial.length).toBeGreaterThan(0);
    expect(partial.length).toBeLessThan(full.length);
    expect(full.startsWith(partial)).toBe(true);
    // The fork that waited was refused, and the person who asked was told; nothing of it was shown.
    expect((await asked.response()).content).toMatch(/The bot is restarting; try again in a moment/);
    expect(alternativesIn(w, threadId)).toEqual([]);

    // After a restart the model is sent the stopped reply as people saw it, and the message is not answered again.
    await w.startBot({ ALTERNATIVES_COOLDOWN_SECONDS: '600' });
    w.discord.postMessage(threadId, alice.id, 'what did you say?');
    const next = await replyTo(w, threadId, 'alice: what did you say?');
    const expected = [
      ...history,
      user('alice: !tokens 300'),
      assistant(partial),
      user('alice: what did you say?'),
    ];
    expect(next.text).toBe(replyFor({ model: MODEL, messages: expected }));
    expect(conversationHolding(w, 'alice: hello')).toEqual(
      [...expected, assistant(next.text)].map((m) => m.text),
    );
    expect(answersTo(w, 'alice: !tokens 300')).toHaveLength(1);
    expect(replies(w, threadId)).toHaveLength(3);

    // No vote holds the thread and the refused request cost no cooldown: /alternatives opens one at once.
    const ballot = await openVote(w, threadId, alice.id, { count: 2, prompt: 'now' });
    expect(ballot.content).toMatch(/\*\*A\*\* 0 · \*\*B\*\* 0/);
    expect(requestsMentioning(w, 'not now')).toEqual([]);
  });

  it('leaves a message whose reply had not begun to the next process, which answers it once', async () => {
    const { w, bot, alice } = await setUp({ SHUTDOWN_GRACE_SECONDS: '1' });
    const threadId = await startThread(w, alice.id, 'hello');
    const history: Said[] = [user('alice: hello'), assistant(replies(w, threadId)[0]!.text)];

    // A model slow to begin (a reasoning model thinking): nothing is written when the grace runs out.
    w.openai.setLatency({ firstTokenMs: 60_000 });
    const from = w.openai.requests.length;
    const slow = w.discord.postMessage(threadId, alice.id, 'take a breath');
    await w.discord.waitFor(() => w.openai.requests.slice(from).find(isGeneration));
    const stopped = await terminate(bot);
    w.openai.setLatency({});
    expect(stopped.code).toBe(0);
    // No empty reply stands for the answer: the person is told it comes after the restart.
    const told = replyToMessage(w, threadId, slow.id)!;
    expect(told.streaming).toBe(false);
    expect(told.text).toBe('⚠️ The bot restarted before it could answer; it answers once it is back.');

    await w.startBot();
    const answer = await replyTo(w, threadId, 'alice: take a breath');
    const expected = [...history, user('alice: take a breath')];
    expect(answer.text).toBe(replyFor({ model: MODEL, messages: expected }));
    expect(repliesTo(w, threadId, 'alice: take a breath')).toHaveLength(1);
    // The conversation holds the message once: what the cut request left there was dropped first.
    expect(conversationHolding(w, 'alice: hello')).toEqual(
      [...expected, assistant(answer.text)].map((m) => m.text),
    );
  });

  it('lets a reply that finishes within a longer grace end normally, and keeps a message posted meanwhile', async () => {
    const { w, bot, alice } = await setUp({ SHUTDOWN_GRACE_SECONDS: '20', BACKEND: 'chat' });
    const threadId = await startThread(w, alice.id, 'hello');
    const history: Said[] = [user('alice: hello'), assistant(replies(w, threadId)[0]!.text)];

    w.openai.setLatency({ tokensPerSecond: 10 });
    const short = w.discord.postMessage(threadId, alice.id, '!tokens 25');
    await streamingReply(w, threadId, short.id);
    const stopping = terminate(bot);
    await bot.waitForLog((l) => l.msg === 'stopping');
    // A message that arrives while the bot stops waits in the thread's inbox for the next process.
    w.discord.postMessage(threadId, alice.id, 'are you still there?');
    const stopped = await stopping;
    w.openai.setLatency({});
    expect(stopped.code).toBe(0);
    // The grace is a limit, not a wait: the bot exits once the reply is done.
    expect(stopped.ms).toBeLessThan(15_000);

    // The reply ended normally: all of it, no stopped footer, no Stop button.
    const reply = replyToMessage(w, threadId, short.id)!;
    const full = replyFor({ model: MODEL, messages: [...history, user('alice: !tokens 25')] });
    expect(reply.streaming).toBe(false);
    expect(reply.text).toBe(full);

    await w.startBot({ BACKEND: 'chat' });
    const next = await replyTo(w, threadId, 'alice: are you still there?');
    const expected = [
      ...history,
      user('alice: !tokens 25'),
      assistant(full),
      user('alice: are you still there?'),
    ];
    expect(next.text).toBe(replyFor({ model: MODEL, messages: expected }));
    const asked = answersTo(w, 'alice: are you still there?');
    expect(asked).toHaveLength(1);
    expect(sentMessages(asked[0]!)).toEqual(expected);
    expect(repliesTo(w, threadId, 'alice: are you still there?')).toHaveLength(1);
  });

  it('ends running alternatives as stopped, and the vote they open holds across the restart', async () => {
    // The responses backend sends a stopped reply as plain input: the next request shows what the model is sent.
    const { w, bot, alice } = await setUp({ SHUTDOWN_GRACE_SECONDS: '1', BACKEND: 'responses' });
    const threadId = await startThread(w, alice.id, 'hello');
    const history: Said[] = [user('alice: hello'), assistant(replies(w, threadId)[0]!.text)];

    w.openai.setLatency({ tokensPerSecond: 3 });
    const asked = w.discord.runCommand({
      channelId: threadId,
      userId: alice.id,
      name: 'alternatives',
      options: { count: 2, prompt: 'take your time', styles: 'one | two' },
    });
    await w.discord.waitFor(
      () => {
        const shown = alternativesIn(w, threadId);
        return shown.length === 2 && shown.every(isStreaming) ? shown : undefined;
      },
      { timeoutMs: 15_000, message: 'both alternatives stream' },
    );
    const stopped = await terminate(bot);
    w.openai.setLatency({});
    expect(stopped.code).toBe(0);
    expect(stopped.ms).toBeLessThan(15_000);

    // Each alternative ended, stopped, with no Stop button and no cursor; the vote opened on them. (Which of the two
    // was posted first depends on whose first words came first: order them by letter.)
    const shown = alternativesIn(w, threadId).sort((a, b) => a.content.localeCompare(b.content));
    expect(shown.map((m) => m.content.split('\n')[0])).toEqual(['**A** · one', '**B** · two']);
    for (const m of shown) {
      expect(isStreaming(m)).toBe(false);
      expect(m.content).not.toContain(CURSOR);
      expect(m.content.endsWith(`\n${STOPPED}`)).toBe(true);
    }
    const ballot = await waitForBallot(w, threadId);
    expect(ballot.content).toMatch(/^🗳/);
    // The person who asked was told, before the bot went away.
    expect((await asked.response()).content).toMatch(/Vote opened on 2 alternatives/);

    const next = await w.startBot({ BACKEND: 'responses' });
    // Still open after the restart, not generating: a second /alternatives is refused, the ballot's buttons work.
    expect(
      await command(w, {
        channelId: threadId,
        userId: alice.id,
        name: 'alternatives',
        options: { count: 2 },
      }),
    ).toMatch(/already open/);
    await click(w, ballot, 'A', alice.id);
    await waitForBallot(w, threadId, (m) => m.id === ballot.id && m.content.startsWith('✅ **A wins'));
    // Its text, between the header and the stopped footer, is what the thread continues with.
    const partialA = alternativeText(shown[0]!);
    expect(partialA.length).toBeGreaterThan(0);
    const forked = [...history, user('alice: take your time'), assistant(partialA)];
    await say(w, threadId, alice, 'and now?', forked);
    // Chained on the last reply that finished; the stopped one and the new message follow it as they are.
    const [request] = answersTo(w, 'alice: and now?');
    expect(sentMessages(request!)).toEqual([...forked.slice(2), user('alice: and now?')]);
    expect(w.openai.requests.filter((r) => isGeneration(r) && r.status !== 200)).toEqual([]);
    // The new process found the vote open, not left generating for it to cancel.
    expect(next.logs.filter((l) => l.msg === 'cancelling alternatives left generating')).toEqual([]);
  });
});
