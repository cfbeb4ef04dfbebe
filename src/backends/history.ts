import { sendable } from '../core/context.ts';
import type { Item } from '../core/model.ts';
import type { HistoryView } from '../core/ports.ts';

/**
 * The shortest tail of a history that `enough` accepts (or all of it after its condensed form), read in windows that
 * double: a backend that needs only the recent part of a long thread reads about that much, not the thread. Items
 * older than the condensed form's making come without their response ids (see `sendable`).
 */
export async function readTail(
  history: HistoryView,
  enough: (tail: readonly Item[]) => boolean,
  firstWindow = 16,
): Promise<Item[]> {
  const floor = history.condensed?.covers ?? 0;
  for (let window = firstWindow; ; window *= 2) {
    const start = Math.max(floor, history.length - window);
    const tail = sendable(history, start, await history.read(start));
    if (start === floor || enough(tail)) return tail;
  }
}
