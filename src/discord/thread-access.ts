import { type Client, DiscordAPIError, RESTJSONErrorCodes, type SendableChannels } from 'discord.js';

/** Resolves a thread as a channel the bot can post in. */
export async function sendableThread(client: Client, threadId: string): Promise<SendableChannels> {
  const channel = await client.channels.fetch(threadId);
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
    const channel = await client.channels.fetch(threadId);
    if (!channel?.isThread() || channel.locked) throw error;
    await channel.setArchived(false, 'threadfork: answering a message');
    return write();
  }
}
