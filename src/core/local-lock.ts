import { createKeyedMutex } from './keyed-mutex.ts';
import type { Lease, LockService } from './ports.ts';

/** A LockService for one process: waits in order, never expires. */
export function createLocalLockService(): LockService {
  const mutex = createKeyedMutex();
  let fencingToken = 0;
  return {
    withLock(key, work) {
      return mutex.run(key, () => {
        // Tokens must keep growing across restarts (they are stored with what they wrote): start from the clock.
        fencingToken = Math.max(fencingToken + 1, Date.now());
        const lease: Lease = { fencingToken, signal: new AbortController().signal };
        return work(lease);
      });
    },
  };
}
