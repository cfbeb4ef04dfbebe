// Two bot processes on one Redis, logged in as the same shard. The Discord emulator hands each event to one chosen
// process (`via`), as a shard handed over between processes or a load balancer in front of interactions does, so
// one thread's messages and one ballot's clicks reach both processes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OptionValue } from '../emulators/discord/types.ts';
import { startRedis } from '../redis-server.ts';
import {
  alternativesIn,
  type BotProcess,
  buttonId,
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
  waitForReplies,
} from './harness.ts';

const redis = await startRedis();

describe.skipIf(!redis)('two processes on one Redis', () => {
  let world: World;
  const bots: BotProcess[] = [];
  /** The gateway session of each process, to deliver an event to it. */
  const via: string[] = [];
  let alice: { id: string };
  let bob: { id: string };
  let mod: { id: string };

  beforeAll(async () => {
    world = await createWorld();
    for (let i = 0; i < 2; i += 1) {
      const { bot, session } = await startBotWithSession(world, {
        STORE_URL: redis!.url,
        ALTERNATIVES_COOLDOWN_SECONDS: '0',
      });
      bots.push(bot);
      via.push(session);
    }
    alice = world.discord.createUser({ username: 'alice' });
    bob = world.discord.createUser({ username: 'bob' });
    mod = world.discord.createUser({ username: 'mod', manageThreads: true });
  });
  afterAll(async () => {
    await world?.close();
    await redis?.stop();
  });

  async function commandVia(
    session: string,
    c: { channelId: string; userId: string; name: string; options?: Record<string, OptionValue> },
  ): Promise<string> {
    const response = await world.discord.runCommand({ ...c, via: session }).response({ timeoutMs: 30_000 });
    return response.content;
  }

  it('answers every message once and in order, one turn at a time, whichever process got it', async () => {
    const threadId = await startThreadVia(world, alice.id, 'relay race', via[0]!);
    world.openai.setLatency({ firstTokenMs: 300 });
    try {
      const started = world.openai.requests.length;
      world.discord.postMessage(threadId, alice.id, 'message 1', { via: via[0]! });
      // While the first turn runs (holding the thread's lock), the rest arrive at both processes at once.
      await world.discord.waitFor(() =>
        world.openai.requests.slice(started).some((r) => r.route === 'POST /v1/responses'),
      );
      for (let n = 2; n <= 8; n += 1) {
        world.discord.postMessage(threadId, n % 2 ? alice.id : bob.id, `message ${n}`, { via: via[n % 2]! });
      }
      await waitForReplies(world, threadId, 9, 30_000);
    } finally {
      world.openai.setLatency({ firstTokenMs: 0 });
    }
    // Later, with nothing running: a message through the second process alone.
    world.discord.postMessage(threadId, bob.id, 'message 9', { via: via[1]! });
    const found = await waitForReplies(world, threadId, 10);

    const answered = found.slice(1).map((r) => r.text.match(/to "(?:alice|bob): (message \d)"/)?.[1]);
    expect(answered).toEqual(Array.from({ length: 9 }, (_, i) => `message ${i + 1}`));
    // Each message went into the conversation once, in order, each followed by its reply.
    const texts = conversationHolding(world, 'relay race');
    expect(texts.filter((_, i) => i % 2 === 0)).toEqual([
      'alice: relay race',
      ...Array.from({ length: 8 }, (_, i) => `${(i + 1) % 2 ? 'alice' : 'bob'}: message ${i + 1}`),
      'bob: message 9',
    ]);
    expect(texts.filter((_, i) => i % 2 === 1)).toEqual(found.map((r) => r.text));
    expect(overlappingTurns(world)).toEqual([]);
    expect(world.openai.requests.filter((r) => r.status === 400)).toEqual([]);
    for (const bot of bots) expect(lockTroubleAndErrors(bot)).toEqual([]);
  }, 90_000);

  it('counts votes clicked through both processes at once exactly, and closes the ballot once', async () => {
    const threadId = await startThreadVia(world, alice.id, 'popular thread', via[0]!);
    await commandVia(via[1]!, {
      channelId: threadId,
      userId: mod.id,
      name: 'settings',
      options: { quorum: 100 },
    });
    expect(
      await commandVia(via[1]!, {
        channelId: threadId,
        userId: alice.id,
        name: 'alternatives',
        options: { count: 3, prompt: 'go' },
      }),
    ).toMatch(/Vote opened on 3 alternatives/);
    const ballot = await waitForBallot(world, threadId);
    const voters = Array.from({ length: 24 }, (_, i) => world.discord.createUser({ username: `voter${i}` }));
    const click = (userId: string, label: string, i: number) =>
      world.discord
        .clickButton({ messageId: ballot.id, customId: buttonId(ballot, label), userId, via: via[i % 2]! })
        .response();

    const first = await Promise.all(voters.map((v, i) => click(v.id, 'ABC'[i % 3]!, i)));
    expect(first.every((r) => /Your vote: \*\*[ABC]\*\*/.test(r.content))).toBe(true);
    await waitForBallot(world, threadId, (m) => m.content.includes('**A** 8 · **B** 8 · **C** 8'));
    // Four of C's voters move to B, through both processes at once, while a message waits for the vote.
    const movers = voters.filter((_, i) => i % 3 === 2).slice(0, 4);
    world.discord.postMessage(threadId, bob.id, 'what did we pick?', { via: via[0]! });
    const moved = await Promise.all(movers.map((v, i) => click(v.id, 'B', i + 1)));
    expect(moved.every((r) => /moved to: \*\*B\*\*/.test(r.content))).toBe(true);
    const tallied = await waitForBallot(world, threadId, (m) =>
      m.content.includes('**A** 8 · **B** 12 · **C** 4'),
    );
    expect(
      buttonIds(tallied)
        .filter((b) => /^[A-E] · /.test(b.label))
        .map((b) => b.label),
    ).toEqual(['A · 8', 'B · 12', 'C · 4']);

    // The invoker's Close reaches both processes at the same moment: one closes it, the other is told.
    const closeId = buttonId(tallied, 'Close');
    const closes = await Promise.all(
      [0, 1].map((i) =>
        world.discord
          .clickButton({ messageId: ballot.id, customId: closeId, userId: alice.id, via: via[i]! })
          .response(),
      ),
    );
    expect(closes.map((r) => r.content).sort()).toEqual([
      expect.stringMatching(/Closed: \*\*B\*\* wins/),
      expect.stringMatching(/already closed: B won/),
    ]);
    const closed = await waitForBallot(world, threadId, (m) => m.content.startsWith('✅'));
    expect(closed.content).toMatch(/B wins\*\* with 12 of 24 votes/);
    // Voting is over (reading the alternatives in full is not).
    expect(
      buttonIds(closed)
        .filter((b) => !b.label.startsWith('Read'))
        .every((b) => b.disabled),
    ).toBe(true);

    // The waiting message is answered once, on the winner.
    await world.discord.waitFor(() => {
      const last = replies(world, threadId).at(-1);
      return last && !last.streaming && last.text.includes('bob: what did we pick?');
    });
    expect(replies(world, threadId).filter((r) => r.text.includes('bob: what did we pick?'))).toHaveLength(1);
    const winner = alternativesIn(world, threadId).find((m) => m.content.startsWith('**B** · '))!;
    expect(conversationHolding(world, 'what did we pick?')).toContain(
      winner.content.split('\n').slice(1, -1).join('\n'),
    );
    // Closed once: one process logged it, and the other was told it was already closed.
    const closings = () =>
      bots.flatMap((b) => b.logs.filter((l) => l.msg === 'vote closed' && l.threadId === threadId));
    await world.discord.waitFor(() => closings().length > 0);
    expect(closings()).toHaveLength(1);
    expect(overlappingTurns(world)).toEqual([]);
    for (const bot of bots) expect(lockTroubleAndErrors(bot)).toEqual([]);
  }, 90_000);
});
