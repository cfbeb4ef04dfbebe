// Several machines (README, "Several machines"): three process groups, each `npm run start:sharded` with its own
// SHARD_IDS out of SHARD_COUNT=6, on one Redis and behind one REST proxy (`npm run rest-proxy`), against a Discord
// emulator that enforces max_concurrency (4 here), the identify budget and the global limit of 50 requests a second.
// One machine is killed while it runs a turn and a vote is open, another takes over; then a rolling reshard to 8.
// There is a guild on every one of the 6 shards (the emulator's default guild on its own, one made for each other),
// each with a thread, so every shard and machine carries work; the reshard maps the guilds to other shards.
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
  /** Index: the shard of 6 the guild is on. */
  const guilds: { id: string; channelId: string }[] = [];
  /** Index: as guilds (the thread lives in that guild). */
  const threads: string[] = [];
  let alice: { id: string };
  let said = 0;

  function startMachine(name: string, shardIds: number[], count: number): Machine {
    const group = spawnBot(
      {
        ...world.env,
        // Commands registered globally, so that they exist in every guild (DISCORD_GUILD_ID registers in one only).
        DISCORD_GUILD_ID: '',
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

  /** Posts one message in every thread (of `among`) and waits until each is answered, once. */
  async function everyThreadAnswers(among: string[] = threads): Promise<void> {
    const texts = among.map(() => `message ${++said}`);
    for (const [i, threadId] of among.entries()) world.discord.postMessage(threadId, alice.id, texts[i]!);
    for (const [i, threadId] of among.entries()) {
      await replyTo(world, threadId, `alice: ${texts[i]}`, 60_000);
      expect(replies(world, threadId).filter((r) => r.text.includes(`"alice: ${texts[i]}"`))).toHaveLength(1);
    }
  }

  /** Whether some connected gateway session runs the guild's shard (else Discord sends its events to nobody). */
  function covered(guildId: string): boolean {
    return world.discord.gatewaySessions().some((s) => s.connected && s.guildIds.includes(guildId));
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
    const home = shardOf(world.discord.guildId, 6);
    for (let shard = 0; shard < 6; shard += 1)
      guilds.push(
        shard === home
          ? { id: world.discord.guildId, channelId: world.discord.channelId }
          : world.discord.createGuild({ name: `on shard ${shard}`, shard: [shard, 6] }),
      );
  }, 60_000);

  afterAll(async () => {
    await Promise.all(machines.map(killGroup));
    await proxy?.kill();
    await world?.close();
    await redis?.stop();
  });

  it('runs six shards on three machines, identifying in turns across them; threads on every shard chat and vote', async () => {
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
    // Shards 0 and 4 (A and C) share bucket 0, 1 and 5 bucket 1: each took its turn through Redis, and the second of
    // a pair identified 5 s or more after the first (by waiting for its turn, or, on a busy machine, by starting
    // later anyway: test/store/redis-identify.test.ts shows the waiting itself).
    const waits = started.flatMap((m) => m.group.logs.filter((l) => l.msg === 'identify turn taken'));
    expect(waits).toHaveLength(6);
    const at = (shard: number) => world.discord.identifies().find((i) => i.shard[0] === shard)!.at;
    expect(Math.abs(at(0) - at(4))).toBeGreaterThanOrEqual(5000);
    expect(Math.abs(at(1) - at(5))).toBeGreaterThanOrEqual(5000);

    expect(guilds.map((g) => shardOf(g.id, 6))).toEqual([0, 1, 2, 3, 4, 5]);
    for (const [shard, guild] of guilds.entries())
      threads.push(await startThread(world, alice.id, `thread on shard ${shard}`, guild.channelId));
    await everyThreadAnswers();
    // A vote in every thread, closed by alice's vote (the only one active: the quorum is a majority of one).
    const ballots = await Promise.all(
      threads.map((t) => openVote(world, t, alice.id, { count: 2, prompt: 'pick one' })),
    );
    await Promise.all(
      ballots.map((b) =>
        world.discord
          .clickButton({ messageId: b.id, customId: buttonId(b, 'A'), userId: alice.id })
          .response(),
      ),
    );
    for (const t of threads)
      expect((await waitForBallot(world, t, (m) => m.content.startsWith('✅'), 60_000)).content).toMatch(
        /A wins\*\*/,
      );
    for (const m of started) expect(lockTroubleAndErrors(m.group)).toEqual([]);
  }, 240_000);

  it("a machine killed mid-turn with a vote open: the others finish both, a new machine takes its shards' threads", async () => {
    // The machine that runs the default guild: its thread runs a slow turn, the other guild it runs has the vote.
    const shard = shardOf(world.discord.guildId, 6);
    const home = machines.find((m) => m.shardIds.includes(shard))!;
    const slow = threads[shard]!;
    const voting = threads[shard ^ 1]!;
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
    const closed = await waitForBallot(
      world,
      voting,
      (m) => m.id === ballot.id && m.content.startsWith('✅'),
      60_000,
    );
    expect(closed.content).toMatch(/B wins\*\* with 1 of 1 vote \(time ran out\)/);

    // Nobody runs those guilds' shards now; a new machine takes the dead one's shards, waiting for its identify turns.
    const replacement = startMachine(`${home.name}'`, home.shardIds, 6);
    await running(replacement);
    await everyThreadAnswers();
    expect(replies(world, slow).filter((r) => r.text.includes('"alice: a slow one"'))).toHaveLength(1);
    for (const m of alive()) expect(lockTroubleAndErrors(m.group)).toEqual([]);
  }, 240_000);

  it('reshards from 6 to 8 shards machine by machine, every thread answering at each step', async () => {
    const old = alive();
    expect(old.flatMap((m) => m.shardIds).sort()).toEqual([0, 1, 2, 3, 4, 5]);
    const ranges = [
      [0, 1, 2],
      [3, 4, 5],
      [6, 7],
    ];
    for (const [i, shardIds] of ranges.entries()) {
      // Start the new machine before stopping the one it replaces. Between steps a guild may be on a stopped old
      // shard and a new one not started yet (Discord then sends its events to nobody): those threads wait for the
      // end; every thread whose guild some shard runs answers at each step, once even where two shards run it.
      await running(startMachine(`new ${i}`, shardIds, 8));
      const retiring = old[i]!;
      await retiring.group.stop();
      expect(await retiring.group.exited).toBe(0);
      await everyThreadAnswers(threads.filter((_, k) => covered(guilds[k]!.id)));
    }
    await everyThreadAnswers();
    const connected = world.discord.gatewaySessions().filter((s) => s.connected);
    expect(connected.map((s) => s.shard).sort((a, b) => a[0] - b[0])).toEqual(
      [0, 1, 2, 3, 4, 5, 6, 7].map((id) => [id, 8]),
    );
    // Each guild is now on shard (id >> 22) % 8, and only there.
    for (const g of guilds)
      expect(connected.filter((s) => s.guildIds.includes(g.id)).map((s) => s.shard[0])).toEqual([
        shardOf(g.id, 8),
      ]);
    for (const m of alive()) expect(lockTroubleAndErrors(m.group)).toEqual([]);
  }, 240_000);

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
