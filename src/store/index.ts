import { createLocalLockService } from '../core/local-lock.ts';
import type { LockService, Logger, Store } from '../core/ports.ts';
import { openStore } from './keyv-store.ts';
import { createRedisLockService } from './redis-lock.ts';

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
