// Issue 14, "Start-up, secrets": the store is reached before logging in, a shard that cannot start backs off
// exponentially, and a Redis password never reaches a log line.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startRedis } from '../redis-server.ts';
import { type BotProcess, createWorld, SHARDED_ENTRY, spawnBot, type World } from './harness.ts';

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

describe.skipIf(!redis)('start-up (npm run start:sharded)', () => {
  let world: World;
  const started: BotProcess[] = [];

  function startSharded(extraEnv: Record<string, string>): BotProcess {
    const manager = spawnBot({ ...world.env, STORE_URL: redis!.url, ...extraEnv }, world.dir, SHARDED_ENTRY);
    started.push(manager);
    return manager;
  }
  /** Logins at the Discord emulator: the gateway URL is asked once per login, before IDENTIFY. */
  const loginAttempts = () => world.discord.requests.filter((r) => r.route === 'GET /gateway/bot').length;
  const identifies = () => world.discord.gatewaySessions().length;

  beforeAll(async () => {
    world = await createWorld();
  });
  afterEach(async () => {
    await Promise.all(started.map((m) => m.stop()));
    for (const m of started.splice(0))
      for (const l of m.logs.filter((line) => line.msg === 'shard started'))
        if (alive(l.pid as number)) process.kill(l.pid as number, 'SIGKILL');
  });
  afterAll(async () => {
    await world?.close();
    await redis?.stop();
  });

  it('does not log in while Redis is down, retrying the store with back-off, and logs each shard in once it is back', async () => {
    await redis!.stop();
    const manager = startSharded({ SHARD_COUNT: '2' });
    // Each shard waits for its store: ~5 s for the first connection, then retries after 0.5, 1, 2 s...
    // Both shards start at once (identifying is what they take turns for) and each waits for its store.
    const storeWaits = (shard: number) =>
      manager.logs
        .filter((l) => l.shard === shard && l.msg.startsWith('the store (STORE_URL) cannot be reached'))
        .map((l) => l.retryInMs);
    await manager.waitForLog(() => storeWaits(0).length >= 3 && storeWaits(1).length >= 3, 30_000);
    expect(storeWaits(0).slice(0, 3)).toEqual([500, 1000, 2000]);
    expect(storeWaits(1).slice(0, 3)).toEqual([500, 1000, 2000]);
    expect(identifies()).toBe(0);
    expect(loginAttempts()).toBe(0);

    await redis!.restart();
    await manager.waitForLog((l) => l.msg === 'all shards are running', 45_000);
    expect(identifies()).toBe(2);
    // Each shard's own lines reach the manager's output through a pipe: wait for both shards' (in either order).
    const loggedIn = () =>
      manager.logs
        .filter((l) => l.msg === 'logged in')
        .map((l) => l.shard as number)
        .sort();
    await manager.waitForLog(() => loggedIn().length >= 2, 15_000);
    expect(loggedIn()).toEqual([0, 1]);
  }, 90_000);

  it('starts a shard that exits on every start again only after a doubling back-off', async () => {
    const before = loginAttempts();
    // A token Discord refuses: each start of the shard fails at its login and the process exits.
    const manager = startSharded({ SHARD_COUNT: '1', DISCORD_TOKEN: 'not-the-token' });
    await manager.waitForLog(
      () => manager.logs.filter((l) => l.msg === 'shard exited; starting it again later').length >= 3,
      40_000,
    );
    const exits = manager.logs.filter((l) => l.msg === 'shard exited; starting it again later');
    expect(exits.slice(0, 3).map((l) => l.retryInMs)).toEqual([1000, 2000, 4000]);
    // One login per start, no more: discord.js's own respawn would have started it again at once.
    const starts = manager.logs.filter((l) => l.msg === 'shard started').length;
    expect(loginAttempts() - before).toBe(starts);
    expect(starts).toBeLessThanOrEqual(4);
  }, 60_000);
});
