import type { Client } from 'discord.js';
import type { BranchAction } from '../core/ports.ts';
import { fitText, NO_PINGS } from './render.ts';
import { actionSummary } from './wording.ts';

/** Copies moderator actions to the audit channel, when one is configured. */
export function createAuditLog({ client, channelId }: { client: Client; channelId: string | undefined }) {
  return async (action: BranchAction): Promise<void> => {
    if (!channelId) return;
    const channel = await client.channels.fetch(channelId);
    if (!channel?.isSendable()) throw new Error(`audit channel ${channelId} cannot receive messages`);
    await channel.send({
      content: fitText(
        `🛡️ **${action.action}** in <#${action.threadId}> by <@${action.userId}>: ${actionSummary(action)}`,
      ),
      allowedMentions: NO_PINGS,
    });
  };
}
