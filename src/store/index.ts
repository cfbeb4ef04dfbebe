import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import KeyvSqlite from '@keyv/sqlite';
import Keyv from 'keyv';
import { createLocalLockService } from '../core/local-lock.ts';
import type { LockService, Logger, Store } from '../core/ports.ts';
import { createKeyvStore } from './keyv-store.ts';
import { createRedisLockService } from './redis-lock.ts';
import { createRedisStore } from './redis-store.ts';

/** The store and the turn lock STORE_URL asks for: SQLite with an in-process lock, or Redis with a shared lock. */
export function openPersistence(
  storeUrl: string,
  logger: Logger,
  options: { lockTtlMs?: number } = {},
): { store: Store; locks: LockService; close(): Promise<void> } {
  const store = openStore(storeUrl);
  if (!/^rediss?:/.test(storeUrl)) {
    return { store, locks: createLocalLockService(), close: () => store.close() };
  }
  const locks = createRedisLockService(storeUrl, {
    ...(options.lockTtlMs !== undefined ? { ttlMs: options.lockTtlMs } : {}),
    onError: (error: unknown) => logger.warn({ err: error }, 'redis lock trouble'),
  });
  return {
    store,
    locks,
    async close() {
      await Promise.all([store.close(), locks.close()]);
    },
  };
}

/**
 * Opens the store named by STORE_URL: `sqlite://path/to/file.sqlite`, or `redis://` / `rediss://` (several processes).
 */
export function openStore(storeUrl: string): Store {
  const url = new URL(storeUrl);
  if (url.protocol === 'sqlite:') {
    const path = decodeURIComponent(`${url.host}${url.pathname}`);
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    const keyv = new Keyv({
      store: new KeyvSqlite({ uri: `sqlite://${path}`, busyTimeout: 5000 }),
      namespace: 'threadfork',
    });
    keyv.throwOnErrors = true;
    return createKeyvStore(keyv);
  }
  if (url.protocol === 'redis:' || url.protocol === 'rediss:') return createRedisStore(storeUrl);
  throw new Error(`STORE_URL scheme ${url.protocol} is not supported yet`);
}
