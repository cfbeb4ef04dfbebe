import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { createKeyedMutex } from '../core/keyed-mutex.ts';
import type { Lease, LockService } from '../core/ports.ts';
import { connectRedis, type RedisConnectionOptions } from './redis-store.ts';

export interface RedisLockOptions extends RedisConnectionOptions {
  /** How long a lock outlives its holder's last renewal (default 30 s). Renewed every ttl/3 while work runs. */
  ttlMs?: number;
}

/** A LockService across processes, plus close() for its Redis connection. */
export interface RedisLockService extends LockService {
  /**
   * Closes the connection. Leases still held stop being renewed: their signals abort when their ttl runs out,
   * and other processes can take their keys from then on.
   */
  close(): Promise<void>;
}

/**
 * Takes the lock (KEYS[1] = token ARGV[1], expiry ARGV[2] ms) and returns the next fencing token, or 0 if held.
 * The token is the larger of the last one plus one and the caller's clock (ARGV[3], ms): it grows with every
 * acquisition, and stays above the tokens stored in thread records even if Redis lost its counter (a restart
 * without persistence), which would otherwise make every later write look like one from a holder that lost its lock.
 */
const ACQUIRE = `if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local token = redis.call('INCR', KEYS[2])
  local now = tonumber(ARGV[3])
  if token < now then
    redis.call('SET', KEYS[2], ARGV[3])
    token = now
  end
  return token
end
return 0`;

/** Extends the lock only while it is still ours (compare token, then PEXPIRE). */
const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;

/** Deletes the lock only while it is still ours (compare token, then DEL). */
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/**
 * Mutual exclusion per key across processes, on one Redis (not Redlock over several). A lock is the key
 * `threadfork:lock:{key}` holding a random token with an expiry; it is renewed every ttl/3 while the work runs and
 * deleted on every path, each time only if it still holds our token. The fencing token is an INCR of
 * `threadfork:fence:{key}` in the same script as the SET NX, so it grows with every acquisition of the key.
 * If a renewal finds the lock gone, or none succeeds before the last confirmed expiry, `lease.signal` aborts.
 * Waiters in this process queue in order (one polls Redis per key); across processes they poll with a growing,
 * jittered delay. A holder that died frees the key after at most ttl. Redis failures throw UnavailableError.
 */
export function createRedisLockService(url: string, options: RedisLockOptions = {}): RedisLockService {
  const { ttlMs = 30_000, ...connectionOptions } = options;
  const connection = connectRedis(url, connectionOptions);
  const { client, run } = connection;
  const local = createKeyedMutex();
  const renewEveryMs = Math.max(1, Math.floor(ttlMs / 3));
  const maxPollMs = Math.min(250, renewEveryMs);

  async function acquire(
    lockKey: string,
    fenceKey: string,
    token: string,
  ): Promise<{ fencingToken: number; at: number }> {
    for (let attempt = 0; ; attempt += 1) {
      const at = Date.now();
      const fencingToken = Number(
        await run(() =>
          client.eval(ACQUIRE, {
            keys: [lockKey, fenceKey],
            arguments: [token, String(ttlMs), String(Date.now())],
          }),
        ),
      );
      if (fencingToken > 0) return { fencingToken, at };
      const delay = Math.min(maxPollMs, 5 * 2 ** attempt);
      await sleep(delay / 2 + (Math.random() * delay) / 2);
    }
  }

  return {
    withLock<T>(key: string, work: (lease: Lease) => Promise<T>): Promise<T> {
      return local.run(key, async () => {
        const lockKey = `threadfork:lock:{${key}}`;
        const fenceKey = `threadfork:fence:{${key}}`;
        const token = randomUUID();
        const { fencingToken, at } = await acquire(lockKey, fenceKey, token).catch(async (error: unknown) => {
          // A timed-out attempt may still have taken the lock: give it back if Redis lets us (else it expires).
          await run(() => client.eval(RELEASE, { keys: [lockKey], arguments: [token] })).catch(() => {});
          throw error;
        });

        const controller = new AbortController();
        let finished = false;
        let renewTimer: NodeJS.Timeout | undefined;
        let expiryTimer: NodeJS.Timeout | undefined;
        const stopTimers = () => {
          clearTimeout(renewTimer);
          clearTimeout(expiryTimer);
        };
        const lose = (why: string) => {
          stopTimers();
          if (!controller.signal.aborted) controller.abort(new Error(`The lock on ${key} was lost: ${why}`));
        };
        // Redis counts the ttl from when it ran the command, later than `since`: expiring here is on the safe side.
        const confirmedUntil = (since: number) => {
          clearTimeout(expiryTimer);
          expiryTimer = setTimeout(
            () => lose(`not renewed within ${ttlMs} ms`),
            Math.max(0, since + ttlMs - Date.now()),
          );
        };
        const renew = async () => {
          const since = Date.now();
          try {
            const renewed = await run(() =>
              client.eval(RENEW, { keys: [lockKey], arguments: [token, String(ttlMs)] }),
            );
            if (finished || controller.signal.aborted) return;
            if (renewed !== 1) return lose('another holder has it or it expired');
            confirmedUntil(since);
          } catch (error) {
            // Redis unreachable: keep trying; the expiry timer aborts the lease if no renewal gets through in time.
            connectionOptions.onError?.(error);
          }
          if (!finished && !controller.signal.aborted) renewTimer = setTimeout(renew, renewEveryMs);
        };
        confirmedUntil(at);
        renewTimer = setTimeout(renew, renewEveryMs);

        try {
          return await work({ fencingToken, signal: controller.signal });
        } finally {
          finished = true;
          stopTimers();
          try {
            await run(() => client.eval(RELEASE, { keys: [lockKey], arguments: [token] }));
          } catch (error) {
            // The lock expires by itself after ttl; the work's own outcome matters more than this failure.
            connectionOptions.onError?.(error);
          }
        }
      });
    },
    close: () => connection.close(),
  };
}
