// `npm run start:sharded` (src/sharded.ts): discord.js's ShardingManager, one process per shard, all on one Redis,
// against the Discord emulator, which routes the guild to shard (guild_id >> 22) % count.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shardOf } from '../emulators/discord/index.ts';
import { startRedis } from '../redis-server.ts';
import {
  type BotProcess,
  createWorld,
  lockTroubleAndErrors,
  replies,
  SHARDED_ENTRY,
  spawnBot,
  startThread,
  type World,
  waitForReplies,
} from './harness.ts';

const redis = await startRedis();

/** Whether a process (a shard the manager started) is still there. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe.skipIf(!redis)('npm run start:sharded', () => {
  let world: World;
  let manager: BotProcess;
  let thread: string;
  const started: BotProcess[] = [];
  /** The shards' process ids, from the manager's log. */
  const shardPids = () =>
    started.flatMap((m) => m.logs.filter((l) => l.msg === 'shard started').map((l) => l.pid as number));

  function startSharded(extraEnv: Record<string, string> = {}): BotProcess {
    const manager = spawnBot({ ...world.env, STORE_URL: redis!.url, ...extraEnv }, world.dir, SHARDED_ENTRY);
    started.push(manager);
    return manager;
  }

  /** Waits until `count` shards have logged that they run (a shard tells the manager it is ready a bit before). */
  function runningShards(manager: BotProcess, count: number) {
    return manager.waitForLog(
      () =>
        new Set(manager.logs.filter((l) => l.msg === 'threadfork is running').map((l) => l.shard)).size ===
        count,
    );
  }

  beforeAll(async () => {
    world = await createWorld({ discord: { recommendedShards: 2 } });
  });
  afterAll(async () => {
    await Promise.all(started.map((m) => m.stop()));
    for (const pid of shardPids()) if (alive(pid)) process.kill(pid, 'SIGKILL');
    await world?.close();
    await redis?.stop();
  });

  it('runs the shards Discord recommends, each logged in, and answers a message in the guild once', async () => {
    manager = startSharded({ LOCK_TTL_MS: '2000' });
    await manager.waitForLog((l) => l.msg === 'all shards are running', 45_000);
    await runningShards(manager, 2);
    expect(manager.logs.find((l) => l.msg === 'starting shards')).toMatchObject({
      totalShards: 2,
      source: 'Discord',
    });
    // Both shards logged in, and their log lines say which shard wrote them.
    const loggedIn = manager.logs.filter((l) => l.msg === 'logged in');
    expect(loggedIn.map((l) => l.shard).sort()).toEqual([0, 1]);
    const owner = shardOf(world.discord.guildId, 2);
    expect(loggedIn.find((l) => l.shard === owner)?.guilds).toBe(1);
    expect(loggedIn.find((l) => l.shard !== owner)?.guilds).toBe(0);
    expect(
      world.discord
        .gatewaySessions()
        .filter((s) => s.connected)
        .map((s) => s.shard)
        .sort(),
    ).toEqual([
      [0, 2],
      [1, 2],
    ]);

    const alice = world.discord.createUser({ username: 'alice' });
    const threadId = await startThread(world, alice.id, 'hello shards');
    world.discord.postMessage(threadId, alice.id, 'answer me once');
    const found = await waitForReplies(world, threadId, 2);
    expect(found[1]!.text).toContain('to "alice: answer me once"');
    // Once: a third message is answered as the third reply, with nothing in between.
    world.discord.postMessage(threadId, alice.id, 'and once more');
    const after = await waitForReplies(world, threadId, 3);
    expect(after.map((r) => r.text.match(/to "alice: ([^"]+)"/)?.[1])).toEqual([
      'hello shards',
      'answer me once',
      'and once more',
    ]);
    const turns = world.openai.requests.filter((r) => r.route === 'POST /v1/responses');
    expect(turns).toHaveLength(3);
    expect(lockTroubleAndErrors(manager)).toEqual([]);
    expect(replies(world, threadId)).toHaveLength(3);
    thread = threadId;
  }, 90_000);

  it('answers a message once when the shard running its turn is killed (respawned; any shard may finish it)', async () => {
    const owner = shardOf(world.discord.guildId, 2);
    const pidOf = (shardId: number) =>
      manager.logs.findLast((l) => l.msg === 'shard started' && l.shardId === shardId)?.pid as number;
    const killed = pidOf(owner);
    const alice = world.discord.createUser({ username: 'alice2' });
    world.openai.setLatency({ firstTokenMs: 60_000 });
    const before = world.openai.requests.length;
    world.discord.postMessage(thread, alice.id, 'slow one');
    await world.discord.waitFor(() =>
      world.openai.requests.slice(before).some((r) => r.route === 'POST /v1/responses'),
    );
    process.kill(killed, 'SIGKILL');
    world.openai.setLatency({ firstTokenMs: 0 });
    const answer = await world.discord.waitFor(
      () => replies(world, thread).find((r) => !r.streaming && r.text.includes('"alice2: slow one')),
      { timeoutMs: 30_000 },
    );
    expect(answer.text).not.toMatch(/⚠️/);
    await manager.waitForLog((l) => l.msg === 'shard started' && l.shardId === owner && l.pid !== killed);
    expect(replies(world, thread).filter((r) => r.text.includes('alice2: slow one'))).toHaveLength(1);
    expect(lockTroubleAndErrors(manager)).toEqual([]);
  }, 90_000);

  it('stops every shard cleanly on SIGTERM, then the manager', async () => {
    const pids = shardPids().filter(alive);
    expect(pids).toHaveLength(2);
    await manager.stop();
    expect(await manager.exited).toBe(0);
    expect(pids.filter(alive)).toEqual([]);
  }, 90_000);

  it('takes SHARD_COUNT over what Discord recommends', async () => {
    const manager = startSharded({ SHARD_COUNT: '1' });
    await manager.waitForLog((l) => l.msg === 'all shards are running', 30_000);
    await runningShards(manager, 1);
    expect(manager.logs.find((l) => l.msg === 'starting shards')).toMatchObject({
      totalShards: 1,
      source: 'SHARD_COUNT',
    });
    expect(manager.logs.filter((l) => l.msg === 'logged in').map((l) => l.shard)).toEqual([0]);
    await manager.stop();
    expect(await manager.exited).toBe(0);
  }, 90_000);

  it('refuses to start sharded on SQLite, with one clear line', async () => {
    const manager = spawnBot(world.env, world.dir, SHARDED_ENTRY);
    started.push(manager);
    expect(await manager.exited).toBe(78);
    const lines = manager.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^STORE_URL must be a redis:\/\/ or rediss:\/\/ URL to run sharded/);
    expect(manager.logs).toEqual([]);
  });
});
