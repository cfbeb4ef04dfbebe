import type { HistoryView } from './ports.ts';

/**
 * Where an earlier turn starts, for "Alternatives from here": the index of the last user item that came from Discord
 * message `messageId` (a bot reply is a Discord reply to the message it answers), or undefined when the history
 * has none (the reply is on another branch, or was not an answer to a message).
 */
export async function userItemIndex(history: HistoryView, messageId: string): Promise<number | undefined> {
  const items = await history.read(0);
  const index = items.findLastIndex(
    (item) => item.role === 'user' && (item.sourceMessageIds ?? []).includes(messageId),
  );
  return index < 0 ? undefined : index;
}
