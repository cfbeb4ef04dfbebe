import { BadInputError, LockLostError } from './errors.ts';
import { createHistoryLog } from './history-log.ts';
import { migrateV1, type SessionV1 } from './migrate-v1.ts';
import type { ThreadSession } from './model.ts';
import type { Store } from './ports.ts';
import { checkVersion } from './schema.ts';

const sessionKey = (threadId: string) => `thread:${threadId}`;
const WORK_INDEX = 'index:threads-with-work';

/** Typed access to thread records in the store. */
export interface SessionRepository {
  get(threadId: string): Promise<ThreadSession | undefined>;
  create(session: ThreadSession): Promise<void>;
  /**
   * Atomically changes a thread's record (`change` may run again on conflict). Writes made under the thread's lock
   * pass the lease's fencing token: the store refuses them (LockLostError) once a newer holder has claimed the thread.
   */
  update(
    threadId: string,
    change: (session: ThreadSession) => ThreadSession,
    fence?: number,
  ): Promise<ThreadSession>;
  /** Marks the thread as held by the lease with this token; from now on older holders' writes are refused. */
  claim(threadId: string, fence: number): Promise<ThreadSession | undefined>;
  /** Threads that have messages waiting or a vote not yet settled, so a restart or a sweep picks them up. */
  threadsWithWork(): Promise<string[]>;
  setHasWork(threadId: string, hasWork: boolean): Promise<void>;
}

/** A record of threadfork 0.1, met inside an atomic update: it is migrated first, then the update runs again. */
class LegacyRecord extends Error {
  readonly record: SessionV1;
  constructor(record: SessionV1) {
    super('a version 1 thread record');
    this.record = record;
  }
}

export function createSessionRepository(store: Store): SessionRepository {
  const log = createHistoryLog(store);
  /** Reads a record, bringing one saved by threadfork 0.1 to the current layout first. */
  async function read(threadId: string): Promise<ThreadSession | undefined> {
    const raw = await store.get<ThreadSession | SessionV1>(sessionKey(threadId));
    if (raw?.version !== 1) return checkVersion('session', raw as ThreadSession | undefined);
    await migrateV1(store, log, raw);
    return checkVersion('session', await store.get<ThreadSession>(sessionKey(threadId)));
  }
  async function updating<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      if (!(error instanceof LegacyRecord)) throw error;
      await migrateV1(store, log, error.record);
      return run();
    }
  }
  const current = (record: ThreadSession | SessionV1): ThreadSession => {
    if (record.version === 1) throw new LegacyRecord(record);
    return checkVersion('session', record)!;
  };
  return {
    get: read,
    async create(session) {
      await store.update<ThreadSession>(sessionKey(session.threadId), (current) => current ?? session);
    },
    async update(threadId, change, fence) {
      const updated = await updating(() =>
        store.update<ThreadSession | SessionV1>(sessionKey(threadId), (record) => {
          if (!record) throw new BadInputError('This thread is not managed by threadfork.');
          const session = current(record);
          if (fence !== undefined && session.fence > fence) throw new LockLostError();
          return change(session);
        }),
      );
      return updated as ThreadSession;
    },
    async claim(threadId, fence) {
      const claimed = await updating(() =>
        store.update<ThreadSession | SessionV1>(sessionKey(threadId), (record) => {
          if (!record) return undefined;
          const session = current(record);
          if (session.fence > fence) throw new LockLostError();
          return { ...session, fence };
        }),
      );
      return claimed as ThreadSession | undefined;
    },
    async threadsWithWork() {
      return (await store.get<string[]>(WORK_INDEX)) ?? [];
    },
    async setHasWork(threadId, hasWork) {
      await store.update<string[]>(WORK_INDEX, (current = []) => {
        const listed = current.includes(threadId);
        if (listed === hasWork) return current;
        return hasWork ? [...current, threadId] : current.filter((id) => id !== threadId);
      });
    },
  };
}
