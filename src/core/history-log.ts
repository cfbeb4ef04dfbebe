import { lineage } from './branch-tree.ts';
import { LockLostError } from './errors.ts';
import { type Item, type LogChunk, SCHEMA_VERSION, type ThreadSession } from './model.ts';
import type { HistoryView, Store } from './ports.ts';
import { checkVersion } from './schema.ts';

/**
 * Items per stored chunk. A turn rewrites one chunk (at most two), so its store cost stays the same however long
 * the thread grows; 64 items of a few kB keep one record well under a megabyte.
 */
export const CHUNK_ITEMS = 64;

const chunkKey = (threadId: string, branchId: string, chunk: number) =>
  `log:${threadId}:${branchId}:${chunk}`;

/**
 * Each branch's own items, as an append-only log in chunks. The branch's `ownItems` in the thread's record is the
 * commit point: items past it are an unfinished write (a process that died or lost its lock between writing its
 * items and committing its turn) and are overwritten by the next write at that place.
 */
export interface HistoryLog {
  /** Writes `items` as a branch's own items from index `at` on, under the lock whose token is `fence`. */
  write(threadId: string, branchId: string, at: number, items: readonly Item[], fence: number): Promise<void>;
  /** A branch's whole history (its ancestors' items up to each fork point, then its own), read lazily. */
  view(session: ThreadSession, branchId: string): HistoryView;
  /** Deletes a branch's items (a pruned branch, an alternative that never opened). */
  deleteBranch(threadId: string, branchId: string, ownItems: number): Promise<void>;
}

interface Segment {
  branchId: string;
  /** How many of the branch's own items this history takes (from its first). */
  count: number;
}

export function createHistoryLog(store: Store): HistoryLog {
  async function readOwn(threadId: string, branchId: string, from: number, to: number): Promise<Item[]> {
    if (to <= from) return [];
    const first = Math.floor(from / CHUNK_ITEMS);
    const last = Math.floor((to - 1) / CHUNK_ITEMS);
    const chunks = await Promise.all(
      Array.from({ length: last - first + 1 }, (_, i) =>
        store.get<LogChunk>(chunkKey(threadId, branchId, first + i)),
      ),
    );
    const items = chunks.flatMap((chunk) => checkVersion('history', chunk)?.items ?? []);
    const out = items.slice(from - first * CHUNK_ITEMS, to - first * CHUNK_ITEMS);
    if (out.length !== to - from)
      throw new Error(`history of ${threadId}/${branchId} is missing items ${from}..${to}`);
    return out;
  }

  return {
    async write(threadId, branchId, at, items, fence) {
      let index = at;
      let rest = items;
      while (rest.length > 0) {
        const chunk = Math.floor(index / CHUNK_ITEMS);
        const offset = index - chunk * CHUNK_ITEMS;
        const part = rest.slice(0, CHUNK_ITEMS - offset);
        await store.update<LogChunk>(chunkKey(threadId, branchId, chunk), (current) => {
          const stored = checkVersion('history', current);
          // A newer lock holder wrote here: this writer lost its lock and must not overwrite what it wrote.
          if (stored && stored.fence > fence) throw new LockLostError();
          const kept = stored?.items.slice(0, offset) ?? [];
          if (kept.length < offset)
            throw new Error(`history of ${threadId}/${branchId} has a gap at ${index}`);
          return { version: SCHEMA_VERSION, fence, items: [...kept, ...part] };
        });
        index += part.length;
        rest = rest.slice(part.length);
      }
    },

    view(session, branchId) {
      const segments: Segment[] = lineage(session, branchId)
        .map(({ branch, take }) => ({ branchId: branch.id, count: Math.min(branch.ownItems, take) }))
        .filter((segment) => segment.count > 0);
      const length = segments.reduce((sum, segment) => sum + segment.count, 0);
      return {
        length,
        async read(start = 0) {
          const parts: Promise<Item[]>[] = [];
          let end = length;
          for (let i = segments.length - 1; i >= 0 && end > start; i -= 1) {
            const segment = segments[i]!;
            const begin = end - segment.count;
            parts.unshift(
              readOwn(session.threadId, segment.branchId, Math.max(0, start - begin), segment.count),
            );
            end = begin;
          }
          return (await Promise.all(parts)).flat();
        },
      };
    },

    async deleteBranch(threadId, branchId, ownItems) {
      // An unfinished write reaches at most one turn past the commit point: one chunk more covers it.
      const chunks = Math.floor(ownItems / CHUNK_ITEMS) + 2;
      await Promise.all(
        Array.from({ length: chunks }, (_, chunk) => store.delete(chunkKey(threadId, branchId, chunk))),
      );
    },
  };
}
