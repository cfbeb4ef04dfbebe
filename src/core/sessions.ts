import { BadInputError, LockLostError } from './errors.ts';
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

export function createSessionRepository(store: Store): SessionRepository {
  return {
    async get(threadId) {
      return checkVersion('session', await store.get<ThreadSession>(sessionKey(threadId)));
    },
    async create(session) {
      await store.update<ThreadSession>(sessionKey(session.threadId), (current) => current ?? session);
    },
    async update(threadId, change, fence) {
      const updated = await store.update<ThreadSession>(sessionKey(threadId), (current) => {
        if (!current) throw new BadInputError('This thread is not managed by threadfork.');
        const session = checkVersion('session', current)!;
        if (fence !== undefined && session.fence > fence) throw new LockLostError();
        return change(session);
      });
      return updated!;
    },
    async claim(threadId, fence) {
      return store.update<ThreadSession>(sessionKey(threadId), (current) => {
        if (!current) return undefined;
        const session = checkVersion('session', current)!;
        if (session.fence > fence) throw new LockLostError();
        return { ...session, fence };
      });
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
