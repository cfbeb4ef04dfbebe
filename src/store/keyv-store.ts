import type Keyv from 'keyv';
import { UnavailableError } from '../core/errors.ts';
import { createKeyedMutex } from '../core/keyed-mutex.ts';
import type { Store } from '../core/ports.ts';

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
