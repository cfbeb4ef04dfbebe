import { ChannelType, type Client, type Interaction, type Message, MessageFlags } from 'discord.js';
import { createKeyedMutex } from '../core/keyed-mutex.ts';
import type { Logger } from '../core/ports.ts';
import { isMedia, readMedia } from './attachments.ts';
import { buttonHandlers } from './buttons.ts';
import type { BotContext } from './context.ts';
import { parseCustomId } from './custom-ids.ts';
import { userMessageFor } from './errors.ts';
import { isModeratorAuthor } from './permissions.ts';
import { DISCORD_LIMITS, fitText, NO_PINGS, truncate } from './render.ts';
import { refusedAttachmentsText } from './wording.ts';

/** The most of one text attachment the model is given; a larger one is not downloaded at all. */
export const TEXT_ATTACHMENT_LIMIT = 100_000;

/** Reads at most `limit` bytes of a response body, whatever its headers claim; undefined when it is longer. */
async function readCapped(response: Response, limit: number): Promise<Buffer | undefined> {
  if (!response.body) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response.body) {
    size += chunk.byteLength;
    if (size > limit) {
      await response.body.cancel().catch(() => {});
      return undefined;
    }
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks);
}

/**
 * Reads the text of a message's attachments that are text, each within `timeoutMs` and TEXT_ATTACHMENT_LIMIT; names
 * the others, and says why one could not be read: the model is told, the message is answered anyway.
 */
async function attachmentText(message: Message, timeoutMs: number, logger: Logger): Promise<string> {
  const parts = await Promise.all(
    [...message.attachments.values()]
      .filter((attachment) => !isMedia(attachment))
      .map(async (attachment) => {
        const isText =
          attachment.contentType?.startsWith('text/') ||
          /\.(txt|md|csv|json|log|ya?ml|[cm]?[jt]sx?|py|rs|go)$/i.test(attachment.name);
        if (!isText) return `[attachment ${attachment.name}: not read]`;
        if (attachment.size > TEXT_ATTACHMENT_LIMIT)
          return `[attachment ${attachment.name}: not read, larger than ${TEXT_ATTACHMENT_LIMIT / 1000} kB]`;
        const failed = (why: string) => {
          logger.info(
            { threadId: message.channelId, attachment: attachment.name, why },
            'attachment not read',
          );
          return `[attachment ${attachment.name}: could not be downloaded (${why})]`;
        };
        try {
          const response = await fetch(attachment.url, { signal: AbortSignal.timeout(timeoutMs) });
          if (!response.ok) {
            await response.body?.cancel().catch(() => {});
            return failed(`HTTP ${response.status}`);
          }
          const body = await readCapped(response, TEXT_ATTACHMENT_LIMIT);
          if (!body) return failed(`larger than ${TEXT_ATTACHMENT_LIMIT / 1000} kB`);
          return `[attachment ${attachment.name}]\n${body.toString('utf8')}`;
        } catch (error) {
          const timedOut = error instanceof Error && error.name === 'TimeoutError';
          return failed(timedOut ? `no answer within ${Math.round(timeoutMs / 1000)} s` : 'network error');
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
    const inThread = message.channel.isThread();
    const startsThread = !inThread && mentionsBot && message.channel.type === ChannelType.GuildText;
    if (!inThread && !startsThread) return;
    // Attachments are downloaded only for the bot's own threads: a message elsewhere costs no download.
    const managed =
      inThread && message.attachments.size > 0 ? await ctx.threads.get(message.channelId) : undefined;
    const readAttachments = message.attachments.size > 0 && (startsThread || managed !== undefined);
    const text = [
      message.content.replace(new RegExp(`<@!?${botId}>`, 'g'), '').trim(),
      readAttachments ? await attachmentText(message, ctx.config.attachmentTimeoutMs, logger) : '',
    ]
      .filter(Boolean)
      .join('\n\n');
    const incoming = {
      messageId: message.id,
      authorId: message.author.id,
      authorName: message.member?.displayName ?? message.author.displayName,
      text,
      isModerator: isModeratorAuthor(message, ctx.config.moderatorRoleIds),
    };
    /** The message's images and PDFs, kept for the thread; what was over a limit gets one line in the thread. */
    const media = async (threadId: string) => {
      const found = [...message.attachments.values()].filter(isMedia);
      if (found.length === 0) return {};
      const { parts, refused, notes } = await readMedia(threadId, found, ctx.attachments);
      if (refused.length > 0)
        await message
          .reply({ content: refusedAttachmentsText(refused), allowedMentions: NO_PINGS })
          .catch((error: unknown) => logger.warn({ err: error, threadId }, 'could not name refused files'));
      return {
        ...(parts.length > 0 ? { parts } : {}),
        ...(notes.length > 0 ? { text: [incoming.text, ...notes].filter(Boolean).join('\n\n') } : {}),
      };
    };
    if (message.channel.isThread()) {
      const threadId = message.channel.id;
      // Only a managed thread's files are kept (and only they are downloaded).
      await ctx.threads.receive({ ...incoming, ...(managed ? await media(threadId) : {}), threadId });
      return;
    }
    if (mentionsBot && message.channel.type === ChannelType.GuildText) {
      const thread = await message.startThread({
        name: truncate(text || `Chat with ${incoming.authorName}`, DISCORD_LIMITS.threadName),
      });
      await ctx.threads.startThread({
        threadId: thread.id,
        guildId: message.guildId,
        userId: message.author.id,
      });
      const files = await media(thread.id);
      if (text || files.parts) await ctx.threads.receive({ ...incoming, ...files, threadId: thread.id });
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
            content: fitText(`⚠️ ${userMessageFor(error)}`),
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
      // Error messages may repeat what a person typed (a branch id of any length): cut, never refused by Discord.
      const content = fitText(`⚠️ ${userMessageFor(error)}`);
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
