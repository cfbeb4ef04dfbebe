import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import KeyvSqlite from '@keyv/sqlite';
import Keyv from 'keyv';
import { UnavailableError } from '../core/errors.ts';
import { createKeyedMutex } from '../core/keyed-mutex.ts';
import type { Store } from '../core/ports.ts';
import { createRedisStore } from './redis-store.ts';

/**
 * The core's Store on keyv. Keyv by default reports a failing backend as a missing key; here every error is thrown
 * as UnavailableError, because a session that silently reads as "absent" would lose a thread.
 */
export function createKeyvStore(keyv: Keyv): Store {
  const mutex = createKeyedMutex();
  const guard = async <T>(operation: () => Promise<T>): Promise<T> => {
    try {
      return await operation();
    } catch (error) {
      throw error instanceof UnavailableError ? error : new UnavailableError(error);
    }
  };
  return {
    get: <T>(key: string) => guard(async () => (await keyv.get<T>(key)) ?? undefined),
    set: (key, value) => guard(async () => void (await keyv.set(key, value))),
    delete: (key) => guard(async () => void (await keyv.delete(key))),
    update<T>(key: string, change: (current: T | undefined) => T | undefined) {
      // One process owns an SQLite file, so a per-key mutex makes read-modify-write atomic.
      return mutex.run(key, async () => {
        const current = await guard(async () => (await keyv.get<T>(key)) ?? undefined);
        const next = change(current);
        await guard(async () => (next === undefined ? keyv.delete(key) : keyv.set(key, next)));
        return next;
      });
    },
    close: () => keyv.disconnect(),
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
