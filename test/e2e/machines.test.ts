// Several machines (README, "Several machines"): three process groups, each `npm run start:sharded` with its own
// SHARD_IDS out of SHARD_COUNT=6, on one Redis and behind one REST proxy (`npm run rest-proxy`), against a Discord
// emulator that enforces max_concurrency (4 here), the identify budget and the global limit of 50 requests a second.
// One machine is killed while it runs a turn and a vote is open, another takes over; then a rolling reshard to 8.
// The emulator has one guild, so the threads all live on the guild's shard: the machine that runs it is the one
// killed, and the reshard moves the guild to another shard and machine.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shardOf } from '../emulators/discord/index.ts';
import { startRedis } from '../redis-server.ts';
import {
  type BotProcess,
  buttonId,
  command,
  createWorld,
  lockTroubleAndErrors,
  openVote,
  replies,
  replyTo,
  SHARDED_ENTRY,
  spawnBot,
  startThread,
  type World,
  waitForBallot,
} from './harness.ts';

const REST_PROXY_ENTRY = new URL('../../src/rest-proxy.ts', import.meta.url).pathname;
const MAX_CONCURRENCY = 4;
const LOCK_TTL_MS = 2000;

const redis = await startRedis();

interface Machine {
  name: string;
  shardIds: number[];
  count: number;
  group: BotProcess;
}

/** Kills a whole process group (the manager and its shards), wherever it is. */
function killGroup(machine: Machine): Promise<unknown> {
  try {
    process.kill(-machine.group.pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
  return machine.group.exited;
}

describe.skipIf(!redis)('several machines: one Redis, one REST proxy, shards split by SHARD_IDS', () => {
  let world: World;
  let proxy: BotProcess;
  let proxyUrl: string;
  const machines: Machine[] = [];
  const threads: string[] = [];
  let alice: { id: string };
  let said = 0;

  function startMachine(name: string, shardIds: number[], count: number): Machine {
    const group = spawnBot(
      {
        ...world.env,
        DISCORD_API_URL: proxyUrl,
        STORE_URL: redis!.url,
        SHARD_COUNT: String(count),
        SHARD_IDS: shardIds.join(','),
        LOCK_TTL_MS: String(LOCK_TTL_MS),
        ALTERNATIVES_COOLDOWN_SECONDS: '0',
        SHUTDOWN_GRACE_SECONDS: '1',
      },
      world.dir,
      SHARDED_ENTRY,
      { detached: true },
    );
    const machine = { name, shardIds, count, group };
    machines.push(machine);
    return machine;
  }

  async function running(machine: Machine): Promise<void> {
    await Promise.race([
      machine.group.waitForLog((l) => l.msg === 'all shards are running', 90_000),
      machine.group.exited.then((code) => {
        throw new Error(`${machine.name} exited with ${code}:\n${machine.group.stderr}`);
      }),
    ]);
  }

  /** Posts one message in every thread and waits until each is answered, once. */
  async function everyThreadAnswers(): Promise<void> {
    const texts = threads.map(() => `message ${++said}`);
    for (const [i, threadId] of threads.entries()) world.discord.postMessage(threadId, alice.id, texts[i]!);
    for (const [i, threadId] of threads.entries()) {
      await replyTo(world, threadId, `alice: ${texts[i]}`, 60_000);
      expect(replies(world, threadId).filter((r) => r.text.includes(`"alice: ${texts[i]}"`))).toHaveLength(1);
    }
  }

  function alive(): Machine[] {
    return machines.filter((m) => m.group.pid > 0 && isRunning(m.group.pid));
  }

  beforeAll(async () => {
    world = await createWorld({ discord: { identifyLimits: { maxConcurrency: MAX_CONCURRENCY } } });
    proxy = spawnBot(
      { REST_PROXY_UPSTREAM: world.discord.apiUrl, REST_PROXY_PORT: '0', LOG_LEVEL: 'info' },
      world.dir,
      REST_PROXY_ENTRY,
    );
    proxyUrl = (await proxy.waitForLog((l) => l.msg.startsWith('REST proxy listening'), 30_000))
      .url as string;
    alice = world.discord.createUser({ username: 'alice' });
  }, 60_000);

  afterAll(async () => {
    await Promise.all(machines.map(killGroup));
    await proxy?.kill();
    await world?.close();
    await redis?.stop();
  });

  it('runs six shards on three machines, identifying in turns across them, and answers threads', async () => {
    const started = [
      startMachine('A', [0, 1], 6),
      startMachine('B', [2, 3], 6),
      startMachine('C', [4, 5], 6),
    ];
    await Promise.all(started.map(running));
    expect(
      world.discord
        .gatewaySessions()
        .filter((s) => s.connected)
        .map((s) => s.shard[0])
        .sort(),
    ).toEqual([0, 1, 2, 3, 4, 5]);
    // Shards 0 and 4 (A and C) share bucket 0, 1 and 5 bucket 1: one of each pair waited for the other's turn.
    const waits = started.flatMap((m) => m.group.logs.filter((l) => l.msg === 'identify turn taken'));
    expect(waits).toHaveLength(6);
    expect(waits.filter((l) => (l.waitedMs as number) >= 4000).length).toBeGreaterThanOrEqual(2);

    for (const prompt of ['first thread', 'second thread', 'third thread'])
      threads.push(await startThread(world, alice.id, prompt));
    await everyThreadAnswers();
    for (const m of started) expect(lockTroubleAndErrors(m.group)).toEqual([]);
  }, 150_000);

  it("a machine killed mid-turn with a vote open: the others finish both, a new machine takes its shards' threads", async () => {
    const home = machines.find((m) => m.shardIds.includes(shardOf(world.discord.guildId, 6)))!;
    const [slow, voting] = threads as [string, string];
    const mod = world.discord.createUser({ username: 'mod', manageThreads: true });
    await command(world, {
      channelId: voting,
      userId: mod.id,
      name: 'settings',
      options: { vote_seconds: 10, quorum: 5 },
    });
    const ballot = await openVote(world, voting, alice.id, { count: 2, prompt: 'pick one' });
    await world.discord
      .clickButton({ messageId: ballot.id, customId: buttonId(ballot, 'B'), userId: alice.id })
      .response();
    world.openai.setLatency({ firstTokenMs: 60_000 });
    const before = world.openai.requests.length;
    world.discord.postMessage(slow, alice.id, 'a slow one');
    await world.discord.waitFor(() =>
      world.openai.requests.slice(before).some((r) => r.route === 'POST /v1/responses'),
    );

    await killGroup(home);
    world.openai.setLatency({ firstTokenMs: 0 });
    // The turn that was running is answered once, by another machine, after the dead one's lock expired.
    await replyTo(world, slow, 'alice: a slow one', 60_000);
    // The vote closes at its deadline, on another machine, with the vote cast before the kill.
    const closed = await waitForBallot(world, voting, (m) => m.content.startsWith('✅'), 60_000);
    expect(closed.content).toMatch(/B wins\*\* with 1 of 1 vote \(time ran out\)/);

    // Nobody runs the guild's shard now; a new machine takes the dead one's shards, waiting for its identify turns.
    const replacement = startMachine(`${home.name}'`, home.shardIds, 6);
    await running(replacement);
    await everyThreadAnswers();
    expect(replies(world, slow).filter((r) => r.text.includes('"alice: a slow one"'))).toHaveLength(1);
    for (const m of alive()) expect(lockTroubleAndErrors(m.group)).toEqual([]);
  }, 150_000);

  it('reshards from 6 to 8 shards machine by machine, every thread answering at each step', async () => {
    const old = alive();
    expect(old.flatMap((m) => m.shardIds).sort()).toEqual([0, 1, 2, 3, 4, 5]);
    const ranges = [
      [0, 1, 2],
      [3, 4, 5],
      [6, 7],
    ];
    for (const [i, shardIds] of ranges.entries()) {
      // Start the new machine before stopping the one it replaces: the guild is never without a shard.
      await running(startMachine(`new ${i}`, shardIds, 8));
      const retiring = old[i]!;
      await retiring.group.stop();
      expect(await retiring.group.exited).toBe(0);
      await everyThreadAnswers();
    }
    const connected = world.discord.gatewaySessions().filter((s) => s.connected);
    expect(connected.map((s) => s.shard).sort((a, b) => a[0] - b[0])).toEqual(
      [0, 1, 2, 3, 4, 5, 6, 7].map((id) => [id, 8]),
    );
    for (const m of alive()) expect(lockTroubleAndErrors(m.group)).toEqual([]);
  }, 180_000);

  it('broke no identify bucket and met no global rate limit', () => {
    const identifies = world.discord.identifies();
    expect(identifies.filter((i) => i.outcome !== 'ready')).toEqual([]);
    // Each bucket's identifies at least 5 s apart, as Discord measures them.
    for (let bucket = 0; bucket < MAX_CONCURRENCY; bucket += 1) {
      const times = identifies.filter((i) => i.bucket === bucket).map((i) => i.at);
      for (const [k, at] of times.entries())
        if (k > 0) expect(at - times[k - 1]!).toBeGreaterThanOrEqual(5000);
    }
    expect(identifies.length).toBeGreaterThanOrEqual(6 + 2 + 8);
    expect(
      world.discord.requests.filter((r) => r.status === 429 && r.headers?.['X-RateLimit-Global']),
    ).toEqual([]);
  });
});

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
