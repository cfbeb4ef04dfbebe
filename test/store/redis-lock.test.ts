import { setTimeout as sleep } from 'node:timers/promises';
import { createClient } from '@keyv/redis';
import { afterAll, describe, expect, it } from 'vitest';
import { UnavailableError } from '../../src/core/errors.ts';
import type { Lease } from '../../src/core/ports.ts';
import { createRedisLockService, type RedisLockService } from '../../src/store/redis-lock.ts';
import { startRedis } from '../redis-server.ts';

const redis = await startRedis();
afterAll(() => redis?.stop());

describe.skipIf(!redis)('Redis lock', () => {
  const url = redis?.url ?? '';
  let prefix = 0;
  const key = (name: string) => `t${++prefix}:${name}`;

  it('never lets work on one key overlap across two services, with growing fencing tokens', async () => {
    const before = Date.now();
    const services: RedisLockService[] = [createRedisLockService(url), createRedisLockService(url)];
    const k = key('thread');
    let active = 0;
    let overlaps = 0;
    const tokens: number[] = [];
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        (services[i % 2] as RedisLockService).withLock(k, async (lease) => {
          active += 1;
          if (active > 1) overlaps += 1;
          tokens.push(lease.fencingToken);
          await sleep(Math.random() * 5);
          expect(lease.signal.aborted).toBe(false);
          active -= 1;
          return i;
        }),
      ),
    );
    expect(results).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(overlaps).toBe(0);
    expect(tokens).toHaveLength(20);
    for (let i = 1; i < tokens.length; i += 1) expect(tokens[i]).toBeGreaterThan(tokens[i - 1] as number);
    // Another key is independent: it does not wait for this one.
    const other = await (services[0] as RedisLockService).withLock(
      key('other'),
      async (lease) => lease.fencingToken,
    );
    // Tokens start from the clock (so they stay above any stored one if Redis loses its counter), per key.
    expect(other).toBeGreaterThanOrEqual(before);
    await Promise.all(services.map((service) => service.close()));
  });

  it('releases the lock when the work throws, and renews it while long work runs', async () => {
    const k = key('paths');
    const patient = [
      createRedisLockService(url, { ttlMs: 5000 }),
      createRedisLockService(url, { ttlMs: 5000 }),
    ];
    await expect(
      patient[0]?.withLock(k, async () => {
        throw new Error('work failed');
      }),
    ).rejects.toThrow('work failed');
    const started = Date.now();
    await patient[1]?.withLock(k, async () => {});
    expect(Date.now() - started).toBeLessThan(1000); // released at once, not left to expire after 5 s
    await Promise.all(patient.map((service) => service.close()));

    const first = createRedisLockService(url, { ttlMs: 300 });
    const second = createRedisLockService(url, { ttlMs: 300 });
    // Work lasting three times the ttl keeps the lock (renewed every ttl/3): the other service waits for it.
    const order: string[] = [];
    const long = first.withLock(k, async (lease) => {
      order.push('long:start');
      await sleep(900);
      expect(lease.signal.aborted).toBe(false);
      order.push('long:end');
    });
    await sleep(50);
    await second.withLock(k, async () => {
      order.push('other');
    });
    await long;
    expect(order).toEqual(['long:start', 'long:end', 'other']);
    await Promise.all([first.close(), second.close()]);
  });

  it('gives the key to another service once a holder that stopped renewing expires, aborting its signal', async () => {
    const dying = createRedisLockService(url, { ttlMs: 400 });
    const alive = createRedisLockService(url, { ttlMs: 400 });
    const k = key('dead');
    let deadLease: Lease | undefined;
    let abortedAt = 0;
    const held = new Promise<void>((resolveHeld) => {
      void dying.withLock(k, (lease) => {
        deadLease = lease;
        resolveHeld();
        // The "dead" process's work never finishes on its own; it only notices the loss through its signal.
        return new Promise<void>((resolve) =>
          lease.signal.addEventListener('abort', () => {
            abortedAt = Date.now();
            resolve();
          }),
        );
      });
    });
    await held;
    await dying.close(); // renewals (and the release) can no longer reach Redis: as if the process had died
    const started = Date.now();
    const token = await alive.withLock(k, async (lease) => {
      expect(deadLease?.signal.aborted).toBe(true);
      return lease.fencingToken;
    });
    const waited = Date.now() - started;
    expect(waited).toBeGreaterThanOrEqual(200); // not before the dead holder's ttl ran out...
    expect(waited).toBeLessThan(2000); // ...and not much after
    expect(token).toBeGreaterThan(deadLease?.fencingToken ?? Number.POSITIVE_INFINITY);
    expect(abortedAt).toBeGreaterThan(0);
    expect(abortedAt).toBeLessThanOrEqual(Date.now());
    await alive.close();
  });

  it('aborts the signal when a renewal finds the lock taken away', async () => {
    const service = createRedisLockService(url, { ttlMs: 300 });
    const k = key('stolen');
    const raw = createClient({ url });
    await raw.connect();
    const aborted = await service.withLock(k, async (lease) => {
      await raw.del(`threadfork:lock:{${k}}`);
      await sleep(250); // longer than one renewal period (ttl/3)
      return lease.signal.aborted;
    });
    expect(aborted).toBe(true);
    await raw.close();
    await service.close();
  });

  it('throws UnavailableError quickly while Redis is down, and locks again after it restarts', async () => {
    const own = await startRedis();
    if (!own) return;
    try {
      const started0 = Date.now();
      const service = createRedisLockService(own.url, { ttlMs: 1000 });
      const first = await service.withLock('k', async (lease) => lease.fencingToken);
      expect(first).toBeGreaterThanOrEqual(started0);
      await own.stop();
      const started = Date.now();
      await expect(service.withLock('k', async () => 'ran')).rejects.toBeInstanceOf(UnavailableError);
      expect(Date.now() - started).toBeLessThan(1000);
      await own.restart();
      const deadline = Date.now() + 10_000;
      let result: string | undefined;
      while (result === undefined) {
        try {
          result = await service.withLock('k', async (lease) => {
            // Even if the restarted Redis lost its counter, a new holder's token is above the old one.
            expect(lease.fencingToken).toBeGreaterThan(first);
            return 'ran';
          });
        } catch (error) {
          if (Date.now() > deadline) throw error;
          await sleep(50);
        }
      }
      expect(result).toBe('ran');
      await service.close();
    } finally {
      await own.stop();
    }
  });
});
