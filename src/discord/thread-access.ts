import { type Client, DiscordAPIError, RESTJSONErrorCodes, type SendableChannels } from 'discord.js';

/**
 * Resolves a thread as a channel the bot can post in. Any process may have to post in any thread (a turn or a vote
 * taken over from another process or shard), so a guild this shard does not hold is no obstacle: REST serves it.
 */
export async function sendableThread(client: Client, threadId: string): Promise<SendableChannels> {
  const channel = await client.channels.fetch(threadId, { allowUnknownGuild: true });
  if (!channel?.isSendable()) throw new Error(`channel ${threadId} cannot receive messages`);
  return channel;
}

/** Runs a Discord write; when the thread was archived meanwhile, reopens it once and tries again. */
export async function withUnarchive<T>(
  client: Client,
  threadId: string,
  write: () => Promise<T>,
): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (
      !(error instanceof DiscordAPIError) ||
      error.code !== RESTJSONErrorCodes.InvalidActionOnArchivedThread
    )
      throw error;
    const channel = await client.channels.fetch(threadId, { allowUnknownGuild: true });
    if (!channel?.isThread() || channel.locked) throw error;
    await channel.setArchived(false, 'threadfork: answering a message');
    return write();
  }
}
