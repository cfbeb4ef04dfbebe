import { BotError } from './errors.ts';
import { type BranchItems, type Item, SCHEMA_VERSION, type ThreadSession } from './model.ts';
import type { Store } from './ports.ts';

const sessionKey = (threadId: string) => `thread:${threadId}`;
const itemsKey = (threadId: string, branchId: string) => `items:${threadId}:${branchId}`;
const WORK_INDEX = 'index:threads-with-work';

/** A stored record written by another version of threadfork: refuse it loudly rather than misread it. */
export class SchemaVersionError extends BotError {
  constructor(what: string, version: unknown) {
    super(
      'schema_version',
      `This thread was saved by another version of threadfork (${what} v${String(version)}); it cannot be continued.`,
    );
  }
}

function checkVersion<T extends { version: number }>(what: string, record: T | undefined): T | undefined {
  if (record && record.version !== SCHEMA_VERSION) throw new SchemaVersionError(what, record.version);
  return record;
}

/** Typed access to thread sessions and branch items in the store. */
export interface SessionRepository {
  get(threadId: string): Promise<ThreadSession | undefined>;
  /** Atomically changes a session; `change` returns the new session (it may run again on conflict). */
  update(threadId: string, change: (session: ThreadSession) => ThreadSession): Promise<ThreadSession>;
  create(session: ThreadSession): Promise<void>;
  /** A branch's own items (not inherited). */
  ownItems(threadId: string, branchId: string): Promise<Item[]>;
  appendItems(threadId: string, branchId: string, items: readonly Item[]): Promise<void>;
  deleteItems(threadId: string, branchId: string): Promise<void>;
  /** A branch's whole history: its ancestors' items up to each fork point, then its own. */
  history(session: ThreadSession, branchId: string): Promise<Item[]>;
  /** Threads that have messages waiting, so a restart answers them. */
  threadsWithWork(): Promise<string[]>;
  setHasWork(threadId: string, hasWork: boolean): Promise<void>;
}

export function createSessionRepository(store: Store): SessionRepository {
  const repository: SessionRepository = {
    async get(threadId) {
      return checkVersion('session', await store.get<ThreadSession>(sessionKey(threadId)));
    },
    async update(threadId, change) {
      const updated = await store.update<ThreadSession>(sessionKey(threadId), (current) => {
        if (!current) throw new BotError('not_managed', 'This thread is not managed by threadfork.');
        return change(checkVersion('session', current)!);
      });
      return updated!;
    },
    async create(session) {
      await store.set(sessionKey(session.threadId), session);
    },
    async ownItems(threadId, branchId) {
      const record = checkVersion('items', await store.get<BranchItems>(itemsKey(threadId, branchId)));
      return record?.items ?? [];
    },
    async appendItems(threadId, branchId, items) {
      await store.update<BranchItems>(itemsKey(threadId, branchId), (current) => ({
        version: SCHEMA_VERSION,
        items: [...(checkVersion('items', current)?.items ?? []), ...items],
      }));
    },
    async deleteItems(threadId, branchId) {
      await store.delete(itemsKey(threadId, branchId));
    },
    async history(session, branchId) {
      const lineage: { branchId: string; take: number }[] = [];
      let take = Number.POSITIVE_INFINITY;
      for (let branch = session.branches[branchId]; branch; ) {
        lineage.unshift({ branchId: branch.id, take });
        take = branch.forkPoint;
        branch = branch.parentId ? session.branches[branch.parentId] : undefined;
      }
      const parts = await Promise.all(
        lineage.map(async ({ branchId: id, take: count }) => {
          const own = await repository.ownItems(session.threadId, id);
          // An ancestor's own items past its child's fork point belong to other lines of the conversation.
          const inherited = session.branches[id]?.forkPoint ?? 0;
          return own.slice(0, Math.max(0, count - inherited));
        }),
      );
      return parts.flat();
    },
    async threadsWithWork() {
      return (await store.get<string[]>(WORK_INDEX)) ?? [];
    },
    async setHasWork(threadId, hasWork) {
      await store.update<string[]>(WORK_INDEX, (current = []) => {
        const others = current.filter((id) => id !== threadId);
        return hasWork ? [...others, threadId] : others;
      });
    },
  };
  return repository;
}
