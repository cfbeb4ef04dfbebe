import type { Item } from '../core/model.ts';
import type { HistoryView } from '../core/ports.ts';

/**
 * The shortest tail of a history that `enough` accepts (or the whole history), read in windows that double: a
 * backend that needs only the recent part of a long thread reads about that much, not the thread.
 */
export async function readTail(
  history: HistoryView,
  enough: (tail: readonly Item[]) => boolean,
  firstWindow = 16,
): Promise<Item[]> {
  for (let window = firstWindow; ; window *= 2) {
    const start = Math.max(0, history.length - window);
    const tail = await history.read(start);
    if (start === 0 || enough(tail)) return tail;
  }
}
