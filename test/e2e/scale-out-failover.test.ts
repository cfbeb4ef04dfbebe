// Two bot processes on one Redis, one of them killed (SIGKILL) while it holds a thread: the other takes the work
// over once the thread's lock expires (LOCK_TTL_MS, short here), and closes the dead one's vote at its deadline.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { shardOf } from '../emulators/discord/index.ts';
import { replyFor } from '../emulators/openai/index.ts';
import { startRedis } from '../redis-server.ts';
import {
  alternativesIn,
  type BotProcess,
  buttonIds,
  conversationHolding,
  createWorld,
  lockTroubleAndErrors,
  overlappingTurns,
  replies,
  startBotWithSession,
  startThreadVia,
  type World,
  waitForBallot,
} from './harness.ts';

const redis = await startRedis();
const MODEL = 'gpt-4.1-mini';
const LOCK_TTL_MS = 2000;
type Said = { role: 'user' | 'assistant'; text: string };
const user = (text: string): Said => ({ role: 'user', text });
const assistant = (text: string): Said => ({ role: 'assistant', text });

let world: World | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});
afterAll(() => redis?.stop());

async function twoProcesses() {
  await redis!.restart(); // each scenario on an empty Redis
  const w = await createWorld();
  world = w;
  const env = { STORE_URL: redis!.url, LOCK_TTL_MS: String(LOCK_TTL_MS), ALTERNATIVES_COOLDOWN_SECONDS: '0' };
  const first = await startBotWithSession(w, env);
  const second = await startBotWithSession(w, env);
  const alice = w.discord.createUser({ username: 'alice' });
  return { w, first, second, alice };
}

/** The finished reply that says it answers `said`. */
function replyTo(w: World, threadId: string, said: string, timeoutMs = 20_000) {
  return w.discord.waitFor(
    () => replies(w, threadId).find((r) => !r.streaming && r.text.includes(`"${said}`)),
    { timeoutMs, message: `no finished reply to ${said}` },
  );
}

function noTrouble(bot: BotProcess) {
  expect(lockTroubleAndErrors(bot)).toEqual([]);
}

describe.skipIf(!redis)('a process dies', () => {
  it('the other answers the message whose turn was running, after the lock expires; nothing is lost', async () => {
    const { w, first, second, alice } = await twoProcesses();
    const threadId = await startThreadVia(w, alice.id, 'hello', first.session);
    const hello = replies(w, threadId)[0]!.text;
    w.openai.setLatency({ firstTokenMs: 60_000 });
    const started = w.openai.requests.length;
    w.discord.postMessage(threadId, alice.id, 'are you there?', { via: first.session });
    await w.discord.waitFor(() =>
      w.openai.requests.slice(started).some((r) => r.route === 'POST /v1/responses'),
    );
    // Nothing tells the survivor about this thread: it finds the waiting message by itself (every 5 s), and takes
    // the thread once the dead process's lock has expired.
    await first.bot.kill();
    const killedAt = Date.now();
    w.openai.setLatency({ firstTokenMs: 0 });

    const answer = await replyTo(w, threadId, 'alice: are you there?');
    expect(Date.now() - killedAt).toBeGreaterThanOrEqual(LOCK_TTL_MS - 100);
    const history = [user('alice: hello'), assistant(hello), user('alice: are you there?')];
    expect(answer.text).toBe(replyFor({ model: MODEL, messages: history }));
    history.push(assistant(answer.text));
    // The conversation holds each message once, in order; no two turns ran on it at once.
    expect(conversationHolding(w, 'alice: hello')).toEqual(history.map((m) => m.text));
    expect(overlappingTurns(w)).toEqual([]);
    expect(w.openai.requests.filter((r) => r.status === 400)).toEqual([]);

    // The thread goes on through the survivor, from the whole history.
    w.discord.postMessage(threadId, alice.id, 'still here', { via: second.session });
    const later = await replyTo(w, threadId, 'alice: still here');
    history.push(user('alice: still here'));
    expect(later.text).toBe(replyFor({ model: MODEL, messages: history }));
    expect(replies(w, threadId).filter((r) => r.text.includes('"alice: are you there?'))).toHaveLength(1);
    noTrouble(second.bot);
  }, 90_000);

  it("a process of another shard, which does not hold the guild, finishes the dead shard's turn", async () => {
    await redis!.restart();
    const w = await createWorld({ discord: { recommendedShards: 2 } });
    world = w;
    const owner = shardOf(w.discord.guildId, 2);
    // Each process runs one shard, as the sharding manager's shards do (discord.js reads SHARDS and SHARD_COUNT).
    const env = (shard: number) => ({
      STORE_URL: redis!.url,
      LOCK_TTL_MS: String(LOCK_TTL_MS),
      SHARDS: String(shard),
      SHARD_COUNT: '2',
    });
    const holder = await startBotWithSession(w, env(owner));
    const other = await startBotWithSession(w, env(1 - owner));
    expect(w.discord.gatewaySessions().map((s) => [s.id, s.guildIds.length])).toEqual([
      [holder.session, 1],
      [other.session, 0],
    ]);
    const alice = w.discord.createUser({ username: 'alice' });
    const threadId = await startThreadVia(w, alice.id, 'hello', holder.session);
    w.openai.setLatency({ firstTokenMs: 60_000 });
    const started = w.openai.requests.length;
    w.discord.postMessage(threadId, alice.id, 'are you there?');
    await w.discord.waitFor(() =>
      w.openai.requests.slice(started).some((r) => r.route === 'POST /v1/responses'),
    );
    await holder.bot.kill();
    w.openai.setLatency({ firstTokenMs: 0 });
    const answer = await replyTo(w, threadId, 'alice: are you there?');
    expect(answer.text).toBe(
      replyFor({
        model: MODEL,
        messages: [
          user('alice: hello'),
          assistant(replies(w, threadId)[0]!.text),
          user('alice: are you there?'),
        ],
      }),
    );
    expect(overlappingTurns(w)).toEqual([]);
    noTrouble(other.bot);
  }, 90_000);

  it('a vote opened by the dead process closes at its deadline, once', async () => {
    const { w, first, second, alice } = await twoProcesses();
    const mod = w.discord.createUser({ username: 'mod', manageThreads: true });
    const threadId = await startThreadVia(w, alice.id, 'short vote', first.session);
    await w.discord
      .runCommand({
        channelId: threadId,
        userId: mod.id,
        name: 'settings',
        options: { vote_seconds: 10, quorum: 5 },
        via: first.session,
      })
      .response();
    await w.discord
      .runCommand({
        channelId: threadId,
        userId: alice.id,
        name: 'alternatives',
        options: { count: 2, prompt: 'pick' },
        via: first.session,
      })
      .response({ timeoutMs: 20_000 });
    const ballot = await waitForBallot(w, threadId);
    await w.discord
      .clickButton({
        messageId: ballot.id,
        customId: buttonIds(ballot).find((b) => b.label.startsWith('B ·'))!.customId,
        userId: alice.id,
        via: second.session,
      })
      .response();
    w.discord.postMessage(threadId, alice.id, 'and now?', { via: second.session });
    await first.bot.kill();

    const closed = await waitForBallot(w, threadId, (m) => m.content.startsWith('✅'), 20_000);
    expect(closed.content).toMatch(/B wins\*\* with 1 of 1 vote \(time ran out\)/);
    const answer = await replyTo(w, threadId, 'alice: and now?');
    const winner = alternativesIn(w, threadId).find((m) => m.content.startsWith('**B** · '))!;
    expect(conversationHolding(w, 'and now?')).toEqual([
      'alice: short vote',
      replies(w, threadId)[0]!.text,
      'alice: pick',
      winner.content.split('\n').slice(1, -1).join('\n'),
      'alice: and now?',
      answer.text,
    ]);
    expect(second.bot.logs.filter((l) => l.msg === 'vote closed')).toHaveLength(1);
    noTrouble(second.bot);
  }, 90_000);
});
