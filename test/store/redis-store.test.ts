import { createClient } from '@keyv/redis';
import { afterAll, describe, expect, it } from 'vitest';
import { UnavailableError } from '../../src/core/errors.ts';
import type { Store } from '../../src/core/ports.ts';
import { openStore } from '../../src/store/index.ts';
import { createRedisStore } from '../../src/store/redis-store.ts';
import { startRedis } from '../redis-server.ts';

const redis = await startRedis();
afterAll(() => redis?.stop());

/** Resolves with the error `operation` fails with, and how long it took. */
async function failure(operation: () => Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const started = Date.now();
  try {
    await operation();
  } catch (error) {
    return { error, ms: Date.now() - started };
  }
  throw new Error('expected the operation to fail');
}

/** Retries `operation` until it succeeds (the client reconnects with a backoff of up to 2 s). */
async function eventually<T>(operation: () => Promise<T>, withinMs = 10_000): Promise<T> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    try {
      return await operation();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

describe.skipIf(!redis)('Redis store', () => {
  const url = redis?.url ?? '';
  let prefix = 0;
  /** A fresh key per test, so tests sharing the server do not see each other's records. */
  const key = (name: string) => `t${++prefix}:${name}`;

  it('gets, sets and deletes JSON records, through openStore too', async () => {
    const store = openStore(url);
    const k = key('thread');
    expect(await store.get(k)).toBeUndefined();
    await store.set(k, { version: 1, items: ['a', ':b'], nested: { ok: true } });
    expect(await store.get(k)).toEqual({ version: 1, items: ['a', ':b'], nested: { ok: true } });
    await store.delete(k);
    expect(await store.get(k)).toBeUndefined();
    await store.delete(k);
    await store.close();
  });

  it('keeps records in keyv layout under the threadfork namespace, shared by get/set and update', async () => {
    const store = createRedisStore(url);
    const k = key('shared');
    await store.set(k, { count: 1 });
    expect(
      await store.update<{ count: number }>(k, (current) => ({ count: (current?.count ?? 0) + 1 })),
    ).toEqual({
      count: 2,
    });
    expect(await store.get(k)).toEqual({ count: 2 });

    const raw = createClient({ url });
    await raw.connect();
    expect(JSON.parse((await raw.get(`threadfork::${k}`)) ?? 'null')).toEqual({ value: { count: 2 } });
    await raw.close();

    expect(await store.update(k, () => undefined)).toBeUndefined();
    expect(await store.get(k)).toBeUndefined();
    expect(await store.update<number>(k, (current) => (current ?? 41) + 1)).toBe(42);
    await store.close();
  });

  it('loses no update when 50 changes reach one key from two connections at once', async () => {
    const first = createRedisStore(url);
    const second = createRedisStore(url);
    const k = key('votes');
    const stores: Store[] = [first, second];
    let changes = 0;
    await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        (stores[i % 2] as Store).update<number[]>(k, (list = []) => {
          changes += 1;
          return [...list, i];
        }),
      ),
    );
    expect(changes).toBeGreaterThan(50); // the updates did collide, and were retried
    expect(((await first.get<number[]>(k)) ?? []).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 50 }, (_, i) => i),
    );
    await Promise.all([first.close(), second.close()]);
  });

  it('throws UnavailableError quickly while Redis is down and works again after it restarts', async () => {
    const own = await startRedis();
    if (!own) return;
    try {
      const store = createRedisStore(own.url, { commandTimeoutMs: 2000 });
      await store.set('before', { n: 1 });
      await own.stop();
      for (const operation of [
        () => store.get('before'),
        () => store.set('during', 1),
        () => store.delete('before'),
        () => store.update<number>('during', (n = 0) => n + 1),
      ]) {
        const { error, ms } = await failure(operation);
        expect(error).toBeInstanceOf(UnavailableError);
        expect(ms).toBeLessThan(1000);
      }

      await own.restart();
      await eventually(() => store.set('after', { n: 2 }));
      expect(await store.get('after')).toEqual({ n: 2 });
      expect(await store.update<number>('counter', (n = 0) => n + 1)).toBe(1);
      expect(await store.get('before')).toBeUndefined(); // the server kept nothing (no persistence)
      await store.close();
    } finally {
      await own.stop();
    }
  });

  it('throws UnavailableError (not "missing") when Redis is down from the start, and closes', async () => {
    const own = await startRedis();
    if (!own) return;
    await own.stop();
    const store = createRedisStore(own.url, { commandTimeoutMs: 500 });
    const { error, ms } = await failure(() => store.get('anything'));
    expect(error).toBeInstanceOf(UnavailableError);
    expect(ms).toBeLessThan(1500);
    await store.close();
  });
});
