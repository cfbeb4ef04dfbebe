import { setTimeout as sleep } from 'node:timers/promises';
import type KeyvRedis from '@keyv/redis';
import type { RedisClientType } from '@keyv/redis';
import { createClient, createKeyv } from '@keyv/redis';
import { UnavailableError } from '../core/errors.ts';
import type { Store } from '../core/ports.ts';
import { createKeyvStore } from './keyv-store.ts';

/** Options shared by the Redis store and the Redis lock service. */
export interface RedisConnectionOptions {
  /**
   * How long one command (and the first connection at start) may take before it fails with UnavailableError.
   * While Redis is known to be down, commands fail at once; this bounds a server that stopped answering.
   */
  commandTimeoutMs?: number;
  /** Told about connection errors (the client keeps reconnecting by itself); by default they are dropped. */
  onError?: (error: unknown) => void;
}

export type RedisClient = RedisClientType;

export interface RedisConnection {
  readonly client: RedisClient;
  /** Runs a command: waits for the first connection (bounded), turns any failure into UnavailableError. */
  run<T>(command: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/**
 * A Redis client that never hangs a caller: commands fail at once while disconnected (no offline queue) and after
 * `commandTimeoutMs` otherwise, and the client reconnects forever in the background (backoff up to 2 s).
 */
export function connectRedis(url: string, options: RedisConnectionOptions = {}): RedisConnection {
  const timeoutMs = options.commandTimeoutMs ?? 5000;
  const client = createClient({
    url,
    disableOfflineQueue: true,
    commandOptions: { timeout: timeoutMs },
    socket: {
      connectTimeout: timeoutMs,
      reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 2000) + Math.random() * 50,
    },
  });
  client.on('error', (error: unknown) => options.onError?.(error));
  // Connecting in the background marks the client open, so @keyv/redis uses it as it is instead of connecting
  // (and waiting) inside a command. Commands sent in the first moments wait for this first connection, all of them
  // together at most `timeoutMs` from here; after that (connected or not) nothing waits any more.
  let starting: Promise<void> | undefined = Promise.race([
    client.connect().then(
      () => {},
      (error: unknown) => options.onError?.(error),
    ),
    sleep(timeoutMs, undefined, { ref: false }),
  ]).then(() => {
    starting = undefined;
  });
  return {
    client,
    async run(command) {
      try {
        if (starting) await starting;
        return await command();
      } catch (error) {
        throw error instanceof UnavailableError ? error : new UnavailableError(error);
      }
    },
    async close() {
      if (!client.isOpen) return;
      if (client.isReady) await client.close();
      else client.destroy();
    },
  };
}

/** Reads a value and the SHA-1 of its stored bytes, which the write below compares. */
const READ = `local v = redis.call('GET', KEYS[1])
if not v then return false end
return {v, redis.sha1hex(v)}`;

/** Writes (ARGV[2] = '1', value ARGV[3]) or deletes only if the key still holds what was read (hash ARGV[1]). */
const COMPARE_AND_WRITE = `local v = redis.call('GET', KEYS[1])
local seen = ''
if v then seen = redis.sha1hex(v) end
if seen ~= ARGV[1] then return 0 end
if ARGV[2] == '1' then redis.call('SET', KEYS[1], ARGV[3]) else redis.call('DEL', KEYS[1]) end
return 1`;

/**
 * The core's Store on Redis, for several processes. get/set/delete/close are the keyv store (keyv with @keyv/redis,
 * namespace `threadfork`, keys `threadfork::<key>`, values in keyv's serialization). `update` is optimistic
 * concurrency on the same keys and values: read the value and its hash, run `change`, then a Lua script writes only
 * if the key still has that hash, else read again. A compare in a script instead of WATCH/MULTI/EXEC because
 * @redis/client v5 multiplexes every command over one connection, where WATCH state is shared by all concurrent
 * updates (one EXEC clears the others' watches); a script needs no connection of its own.
 * Every failure is an UnavailableError; the client reconnects by itself when Redis comes back.
 */
export function createRedisStore(url: string, options: RedisConnectionOptions = {}): Store {
  const connection = connectRedis(url, options);
  // The adapter takes any client; its parameter type wants the widest client generics, ours has the defaults.
  const keyv = createKeyv(connection.client as unknown as Parameters<typeof createKeyv>[0], {
    namespace: 'threadfork',
    throwOnErrors: true,
  });
  // Connection errors reach callers as UnavailableError (and options.onError via the client); keyv must not throw
  // them from its event emitter.
  keyv.on('error', () => {});
  const adapter = keyv.store as KeyvRedis<string>;
  const keyvStore = createKeyvStore(keyv);
  const { run } = connection;
  /** The Redis key keyv uses for `key` (keyv's own prefix, then the adapter's `namespace::`). */
  const redisKey = (key: string) => adapter.createKeyPrefix(keyv._getKeyPrefix(key), adapter.namespace);

  return {
    get: (key) => run(() => keyvStore.get(key)),
    set: (key, value) => run(() => keyvStore.set(key, value)),
    delete: (key) => run(() => keyvStore.delete(key)),
    async update<T>(key: string, change: (current: T | undefined) => T | undefined) {
      const stored = redisKey(key);
      for (let conflicts = 0; ; conflicts += 1) {
        const read = (await run(() => connection.client.eval(READ, { keys: [stored] }))) as
          | [string, string]
          | null;
        const current = read === null ? undefined : await run(() => decode<T>(read[0]));
        const next = change(current);
        const value =
          next === undefined ? '' : await run(async () => String(await keyv.serializeData({ value: next })));
        const written = await run(() =>
          connection.client.eval(COMPARE_AND_WRITE, {
            keys: [stored],
            arguments: [read?.[1] ?? '', next === undefined ? '0' : '1', value],
          }),
        );
        if (written === 1) return next;
        // Someone else wrote in between; after a few collisions in a row, spread the retries out a little.
        if (conflicts >= 2) await sleep(Math.random() * Math.min(2 ** conflicts, 50));
      }
    },
    // Not keyv.disconnect(): while Redis is down, closing must not wait for a connection that may never come.
    close: () => connection.close(),
  };

  async function decode<T>(raw: string): Promise<T | undefined> {
    const data = await keyv.deserializeData<T>(raw);
    if (data === undefined) return undefined;
    // keyv treats an expired record as absent; the store never sets a ttl, but agree with keyv anyway.
    if (typeof data.expires === 'number' && Date.now() > data.expires) return undefined;
    return data.value ?? undefined;
  }
}
