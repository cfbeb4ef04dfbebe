import { afterAll, describe, expect, it } from 'vitest';
import { createRedisIdentifyThrottler } from '../../src/store/redis-identify.ts';
import { connectRedis } from '../../src/store/redis-store.ts';
import { silentLogger } from '../fakes.ts';
import { startRedis } from '../redis-server.ts';

const redis = await startRedis();
const connections: ReturnType<typeof connectRedis>[] = [];
afterAll(async () => {
  await Promise.all(connections.map((c) => c.close()));
  await redis?.stop();
});

const SPACING_MS = 800;
/** A turn is seen here when its promise settles, which a loaded machine may delay for one waiter and not the next. */
const SLACK_MS = 300;

/** A throttler as one machine has it: its own connection to the shared Redis. */
function machine(maxConcurrency: number) {
  const connection = connectRedis(redis!.url);
  connections.push(connection);
  return createRedisIdentifyThrottler({
    connection,
    maxConcurrency,
    logger: silentLogger,
    spacingMs: SPACING_MS,
  });
}

describe.skipIf(!redis)('identify turns through Redis', () => {
  it('spaces the identifies of one bucket across machines, and lets other buckets go at once', async () => {
    await redis!.restart();
    const [a, b] = [machine(2), machine(2)];
    const signal = new AbortController().signal;
    const at: Record<string, number> = {};
    const start = Date.now();
    const turn = (name: string, throttler: typeof a, shardId: number) =>
      throttler.waitForIdentify(shardId, signal).then(() => {
        at[name] = Date.now() - start;
      });
    // Shards 0, 2 and 4 share bucket 0 (max_concurrency 2), on two machines; shard 1 is alone in bucket 1.
    await Promise.all([turn('0', a, 0), turn('2', b, 2), turn('4', a, 4), turn('1', b, 1)]);
    const bucket0 = [at['0']!, at['2']!, at['4']!].sort((x, y) => x - y);
    expect(bucket0[1]! - bucket0[0]!).toBeGreaterThanOrEqual(SPACING_MS - SLACK_MS);
    expect(bucket0[2]! - bucket0[1]!).toBeGreaterThanOrEqual(SPACING_MS - SLACK_MS);
    expect(at['1']!).toBeLessThan(SPACING_MS);
  });

  it('makes a machine that restarts wait for the turn taken before it', async () => {
    await redis!.restart();
    const signal = new AbortController().signal;
    await machine(1).waitForIdentify(0, signal);
    const restarted = Date.now();
    await machine(1).waitForIdentify(0, signal);
    expect(Date.now() - restarted).toBeGreaterThanOrEqual(SPACING_MS - SLACK_MS);
  });

  it('stops waiting when the shard gives up (its signal aborts)', async () => {
    await redis!.restart();
    const throttler = machine(1);
    await throttler.waitForIdentify(0, new AbortController().signal);
    const controller = new AbortController();
    const waiting = throttler.waitForIdentify(3, controller.signal);
    controller.abort(new Error('shard destroyed'));
    await expect(waiting).rejects.toThrow('shard destroyed');
  });
});
