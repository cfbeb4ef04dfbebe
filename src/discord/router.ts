import { ChannelType, type Client, type Interaction, type Message, MessageFlags } from 'discord.js';
import { createKeyedMutex } from '../core/keyed-mutex.ts';
import type { Logger } from '../core/ports.ts';
import { buttonHandlers } from './buttons.ts';
import type { BotContext } from './context.ts';
import { parseCustomId } from './custom-ids.ts';
import { userMessageFor } from './errors.ts';
import { truncate } from './render.ts';

const TEXT_ATTACHMENT_LIMIT = 100_000;

/** Reads the text of a message's attachments that are text; names the others. */
async function attachmentText(message: Message): Promise<string> {
  const parts = await Promise.all(
    [...message.attachments.values()].map(async (attachment) => {
      const isText =
        attachment.contentType?.startsWith('text/') ||
        /\.(txt|md|csv|json|log|ya?ml|[cm]?[jt]sx?|py|rs|go)$/i.test(attachment.name);
      if (!isText || attachment.size > TEXT_ATTACHMENT_LIMIT)
        return `[attachment ${attachment.name}: not read]`;
      try {
        const response = await fetch(attachment.url);
        return `[attachment ${attachment.name}]\n${await response.text()}`;
      } catch {
        return `[attachment ${attachment.name}: could not be downloaded]`;
      }
    }),
  );
  return parts.join('\n\n');
}

export function routeEvents({
  client,
  ctx,
  logger,
}: {
  client: Client;
  ctx: BotContext;
  logger: Logger;
}): void {
  const byName = new Map(ctx.commands.map((command) => [command.data.name, command]));
  const messageCommandsByName = new Map(ctx.messageCommands.map((command) => [command.data.name, command]));

  async function onMessage(message: Message): Promise<void> {
    if (message.author.bot || message.system || !message.inGuild()) return;
    const botId = client.user?.id;
    const mentionsBot = botId !== undefined && message.mentions.users.has(botId);
    const text = [
      message.content.replace(new RegExp(`<@!?${botId}>`, 'g'), '').trim(),
      await attachmentText(message),
    ]
      .filter(Boolean)
      .join('\n\n');
    const incoming = {
      messageId: message.id,
      authorId: message.author.id,
      authorName: message.member?.displayName ?? message.author.displayName,
      text,
    };
    if (message.channel.isThread()) {
      await ctx.threads.receive({ ...incoming, threadId: message.channel.id });
      return;
    }
    if (mentionsBot && message.channel.type === ChannelType.GuildText) {
      const thread = await message.startThread({
        name: truncate(text || `Chat with ${incoming.authorName}`, 90),
      });
      await ctx.threads.startThread({
        threadId: thread.id,
        guildId: message.guildId,
        userId: message.author.id,
      });
      if (text) await ctx.threads.receive({ ...incoming, threadId: thread.id });
    }
  }

  async function onInteraction(interaction: Interaction): Promise<void> {
    if (interaction.isChatInputCommand()) {
      const command = byName.get(interaction.commandName);
      if (command) await command.execute(interaction, ctx);
    } else if (interaction.isMessageContextMenuCommand()) {
      await messageCommandsByName.get(interaction.commandName)?.execute(interaction, ctx);
    } else if (interaction.isAutocomplete()) {
      await byName.get(interaction.commandName)?.autocomplete?.(interaction, ctx);
    } else if (interaction.isButton()) {
      const action = parseCustomId(interaction.customId);
      if (!action) {
        await interaction.reply({
          flags: MessageFlags.Ephemeral,
          content: 'This button no longer does anything.',
        });
        return;
      }
      const handler = buttonHandlers[action.kind] as (
        i: typeof interaction,
        a: typeof action,
        c: BotContext,
      ) => Promise<void>;
      await handler(interaction, action, ctx);
    }
  }

  // Messages of one channel are read one after the other (attachments take a download), so they queue in the order
  // Discord sent them.
  const perChannel = createKeyedMutex();
  client.on('messageCreate', (message) => {
    perChannel
      .run(message.channelId, () => onMessage(message))
      .catch(async (error: unknown) => {
        logger.error(
          { err: error, guildId: message.guildId, threadId: message.channelId, userId: message.author.id },
          'message failed',
        );
        await message
          .reply({
            content: `⚠️ ${userMessageFor(error)}`,
            allowedMentions: { parse: [], repliedUser: false },
          })
          .catch(() => {});
      });
  });

  client.on('interactionCreate', (interaction) => {
    onInteraction(interaction).catch(async (error: unknown) => {
      const command =
        interaction.isCommand() || interaction.isAutocomplete()
          ? interaction.commandName
          : interaction.isButton()
            ? interaction.customId
            : undefined;
      const fields = {
        err: error,
        command,
        guildId: interaction.guildId,
        threadId: interaction.channelId,
        userId: interaction.user.id,
      };
      if (error instanceof Error && 'userMessage' in error) logger.info(fields, 'interaction refused');
      else logger.error(fields, 'interaction failed');
      if (!interaction.isRepliable()) return;
      const content = `⚠️ ${userMessageFor(error)}`;
      try {
        if (interaction.deferred && !interaction.replied)
          await interaction.editReply({ content, embeds: [], components: [] });
        else if (interaction.replied || interaction.deferred)
          await interaction.followUp({ content, flags: MessageFlags.Ephemeral });
        else await interaction.reply({ content, flags: MessageFlags.Ephemeral });
      } catch (replyError) {
        logger.warn(
          { err: replyError, threadId: interaction.channelId },
          'could not tell the user about an error',
        );
      }
    });
  });
}
