// Issue 12, case 2: a fork that goes wrong neither freezes the thread nor leaves anything in its history.
import { afterEach, describe, expect, it } from 'vitest';
import { replyFor } from '../emulators/openai/index.ts';
import {
  alternativesIn,
  alternativeText,
  answersTo,
  branchList,
  deleteMessage,
  isGeneration,
  type Person,
  ROOMY,
  requestsMentioning,
  restart,
  say,
} from './fault-probes.ts';
import {
  assistant,
  click,
  command,
  conversationHolding,
  createWorld,
  isStreaming,
  MODEL,
  openVote,
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

const ENV = { ALTERNATIVES_COOLDOWN_SECONDS: '0' };

async function setUp(env: Record<string, string> = {}) {
  world = await createWorld({ discord: ROOMY });
  const bot = await world.startBot({ ...ENV, ...env });
  const alice = world.discord.createUser({ username: 'alice' });
  const mod = world.discord.createUser({ username: 'mod', manageThreads: true });
  return { w: world, bot, alice, mod };
}

/** A vote the thread can hold after the fault: it opens, its branches are new, and B wins. */
async function forkAgain(w: World, threadId: string, who: Person, modId: string, history: Said[]) {
  const before = new Set(alternativesIn(w, threadId).map((m) => m.id));
  const ballot = await openVote(w, threadId, who.id, {
    count: 2,
    prompt: 'fork again',
    styles: 'one | two',
  });
  const b = alternativesIn(w, threadId).find((m) => !before.has(m.id) && m.content.startsWith('**B**'))!;
  await click(w, ballot, 'B', who.id);
  await waitForBallot(w, threadId, (m) => m.id === ballot.id && m.content.startsWith('✅ **B wins'));
  return {
    branches: await branchList(w, threadId, modId),
    history: [...history, user(`${who.username}: fork again`), assistant(alternativeText(b))],
  };
}

describe('a fork that fails', () => {
  it('when every alternative fails: the thread goes on, the next fork gets new branches, and its exchange never comes back', async () => {
    const { w, bot, alice, mod } = await setUp();
    const threadId = await startThread(w, alice.id, 'hello');
    let history: Said[] = [user('alice: hello'), assistant(replies(w, threadId)[0]!.text)];

    w.openai.failNext({
      route: 'POST /v1/responses',
      status: 400,
      code: 'invalid_prompt',
      message: 'Invalid prompt: flagged as potentially violating our usage policy.',
      times: 2,
    });
    const said = await command(w, {
      channelId: threadId,
      userId: alice.id,
      name: 'alternatives',
      options: { count: 2, prompt: 'doomed fork' },
    });
    expect(said).toMatch(/Every alternative failed; nothing changed/);
    const afterFailure = w.openai.requests.length;
    // The thread shows both alternatives failed and says the vote is off; no ballot, nothing left streaming.
    const failed = alternativesIn(w, threadId);
    expect(failed).toHaveLength(2);
    expect(failed.every((m) => m.content.includes('⚠️ OpenAI rejected the request'))).toBe(true);
    await w.discord.waitFor(() =>
      w.discord
        .messages(threadId)
        .find((m) => m.content.startsWith('🚫 The vote was cancelled: Every alternative failed')),
    );
    expect(w.discord.messages(threadId).some((m) => m.text.startsWith('🗳'))).toBe(false);
    expect(w.discord.messages(threadId).some(isStreaming)).toBe(false);

    // The next message is answered at once, from the history before the fork.
    history = await say(w, threadId, alice, 'after the failure', history);
    expect(history).toHaveLength(4);

    // /alternatives works again, on branches the failed fork never used.
    const again = await forkAgain(w, threadId, alice, mod.id, history);
    expect(again.branches).toEqual({ ids: ['b1', 'b4', 'b5'], active: 'b5' });
    history = await say(w, threadId, alice, 'after the vote', again.history);

    // After a restart the model is sent exactly the thread as people saw it: the failed exchange is not in it.
    await restart(w, bot, ENV);
    history = await say(w, threadId, alice, 'after the restart', history);
    expect(history).toHaveLength(10);
    expect(conversationHolding(w, 'alice: hello')).toEqual(history.map((m) => m.text));
    expect(requestsMentioning(w, 'doomed fork', afterFailure)).toEqual([]);
  });

  it('when every automatic alternative fails: the message is not lost, a Retry answers it once', async () => {
    const { w, alice, mod } = await setUp();
    const threadId = await startThread(w, alice.id, 'hello');
    const history: Said[] = [user('alice: hello'), assistant(replies(w, threadId)[0]!.text)];
    await command(w, {
      channelId: threadId,
      userId: mod.id,
      name: 'settings',
      options: { auto_alternatives: 2 },
    });
    w.openai.failNext({ route: 'POST /v1/responses', status: 400, code: 'invalid_prompt', times: 2 });
    w.discord.postMessage(threadId, alice.id, 'surprise me');
    await w.discord.waitFor(() =>
      w.discord
        .messages(threadId)
        .find((m) => m.content.startsWith('🚫 The vote was cancelled: Every alternative failed')),
    );
    const failed = await w.discord.waitFor(() => {
      const shown = alternativesIn(w, threadId);
      return shown.length === 2 && shown.every((m) => m.content.includes('⚠️')) ? shown : undefined;
    });
    expect(w.discord.messages(threadId).some(isStreaming)).toBe(false);
    // The person can ask again for the message: a Retry button on what failed.
    const retry = failed.find((m) => JSON.stringify(m.components).includes('"retry:'));
    expect(retry, 'a Retry button for the message').toBeDefined();
    await click(w, retry!, 'Retry', alice.id);
    const ballot = await waitForBallot(w, threadId, (m) => m.content.startsWith('🗳'));
    const retried = alternativesIn(w, threadId).filter((m) => !failed.some((f) => f.id === m.id));
    expect(retried.map((m) => m.content.split('\n')[0])).toEqual(['**A** · default', '**B** · default']);
    expect(alternativeText(retried[0]!)).toBe(
      replyFor({ model: MODEL, messages: [...history, user('alice: surprise me')] }),
    );
    await click(w, ballot, 'A', alice.id);
    await waitForBallot(w, threadId, (m) => m.id === ballot.id && m.content.startsWith('✅'));
    expect(answersTo(w, 'alice: surprise me')).toHaveLength(2); // the two alternatives of the one retry
  });

  it('when the bot stops before any alternative was written: cancelled with a notice, nothing of it kept', async () => {
    const { w, bot, alice } = await setUp({ SHUTDOWN_GRACE_SECONDS: '1' });
    const threadId = await startThread(w, alice.id, 'hello');
    let history: Said[] = [user('alice: hello'), assistant(replies(w, threadId)[0]!.text)];

    // A model slow to begin (a reasoning model thinking): nothing is written when the grace runs out.
    w.openai.setLatency({ firstTokenMs: 60_000 });
    const from = w.openai.requests.length;
    const asked = w.discord.runCommand({
      channelId: threadId,
      userId: alice.id,
      name: 'alternatives',
      options: { count: 2, prompt: 'think hard' },
    });
    // The first alternative is on its way (the other starts at its first token, which never comes).
    await w.discord.waitFor(() => w.openai.requests.slice(from).filter(isGeneration).length === 1);
    await bot.stop();
    w.openai.setLatency({});
    expect(await bot.exited).toBe(0);
    const afterFork = w.openai.requests.length;

    // What people see: two alternatives that were never written, the vote called off, no ballot, nothing streaming.
    expect((await asked.response()).content).toMatch(
      /The bot restarted before the alternatives were written/,
    );
    // Both are posted as they end, at once: in either order.
    expect(
      alternativesIn(w, threadId)
        .map((m) => m.content)
        .sort(),
    ).toEqual([
      '**A** · default\n⚠️ The bot restarted before this alternative was written.',
      '**B** · default\n⚠️ The bot restarted before this alternative was written.',
    ]);
    expect(w.discord.messages(threadId).map((m) => m.content)).toContain(
      '🚫 The vote was cancelled: The bot restarted while it was generating alternatives; ask again with /alternatives.',
    );
    expect(w.discord.messages(threadId).some((m) => m.text.startsWith('🗳'))).toBe(false);
    expect(w.discord.messages(threadId).some(isStreaming)).toBe(false);

    // After the restart the thread goes on from before the fork, and a fork can be asked for again.
    await w.startBot(ENV);
    history = await say(w, threadId, alice, 'and now?', history);
    await openVote(w, threadId, alice.id, { count: 2, prompt: 'think again' });
    expect(conversationHolding(w, 'alice: hello')).toEqual(history.map((m) => m.text));
    expect(requestsMentioning(w, 'think hard', afterFork)).toEqual([]);
  });

  it('when the live ballot is deleted while its alternatives stream: it is posted again whole, the vote opens, and the thread goes on after it', async () => {
    const { w, bot, alice, mod } = await setUp();
    const threadId = await startThread(w, alice.id, 'hello');
    let history: Said[] = [user('alice: hello'), assistant(replies(w, threadId)[0]!.text)];

    // A slow model, so the delete lands while B is still streaming.
    w.openai.setLatency({ tokensPerSecond: 6 });
    const asked = w.discord.runCommand({
      channelId: threadId,
      userId: alice.id,
      name: 'alternatives',
      options: { count: 2, prompt: 'watch this', styles: 'one | two' },
    });
    const streaming = await w.discord.waitFor(
      () => alternativesIn(w, threadId).find((m) => m.content.startsWith('**B**') && isStreaming(m)),
      { timeoutMs: 15_000, message: 'alternative B streams' },
    );
    await deleteMessage(w, threadId, streaming.id);
    // The bot's next edit of it meets 10008 Unknown Message while B still streams: the vote still needs its ballot.
    await bot.waitForLog((l) => (l.err as { code?: number } | undefined)?.code === 10008, 15_000);
    w.openai.setLatency({});
    expect((await asked.response({ timeoutMs: 30_000 })).content).toMatch(/Vote opened on 2 alternatives/);

    // What people see: the ballot posted again with both alternatives finished in it, nothing left streaming.
    const ballot = await waitForBallot(w, threadId, (m) => m.content.startsWith('🗳'));
    expect(ballot.id).not.toBe(streaming.id);
    const shown = alternativesIn(w, threadId);
    expect(shown.map((m) => m.content.split('\n')[0])).toEqual(['**A** · one', '**B** · two']);
    for (const alternative of shown) expect(alternative.content).toMatch(/-# \d+ in · \d+ out tokens$/);
    expect(w.discord.message(streaming.id)).toBeUndefined();
    expect(w.discord.messages(threadId).some(isStreaming)).toBe(false);
    expect(ballot.content).toMatch(/\*\*A\*\* 0 · \*\*B\*\* 0/);

    await click(w, ballot, 'A', alice.id);
    await waitForBallot(w, threadId, (m) => m.id === ballot.id && m.content.startsWith('✅ **A wins'));
    history = [...history, user('alice: watch this'), assistant(alternativeText(shown[0]!))];
    history = await say(w, threadId, alice, 'after the vote', history);

    const again = await forkAgain(w, threadId, alice, mod.id, history);
    expect(again.branches.ids.toSorted()).toEqual(['b1', 'b2', 'b3', 'b4', 'b5']);
    expect(again.branches.active).toBe('b5');
    await restart(w, bot, ENV);
    history = await say(w, threadId, alice, 'after the restart', again.history);
    expect(history).toHaveLength(10);
    expect(conversationHolding(w, 'alice: hello')).toEqual(history.map((m) => m.text));
  });
});
