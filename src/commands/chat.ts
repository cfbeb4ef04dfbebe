import {
  ApplicationCommandOptionType,
  ChannelType,
  MessageFlags,
  type RESTPostAPIChatInputApplicationCommandsJSONBody,
} from 'discord.js';
import { BadInputError } from '../core/errors.ts';
import type { Command } from '../discord/context.ts';
import { NO_PINGS, promptEcho, truncate } from '../discord/render.ts';

const data = {
  name: 'chat',
  description: 'Start a conversation with the model in a new thread (or in this thread)',
  options: [
    {
      type: ApplicationCommandOptionType.String,
      name: 'prompt',
      description: 'Your first message',
      max_length: 4000,
    },
    {
      type: ApplicationCommandOptionType.String,
      name: 'instructions',
      description: 'How the model should behave in this thread',
      max_length: 4000,
    },
  ],
} as const satisfies RESTPostAPIChatInputApplicationCommandsJSONBody;

export const chat = {
  data,
  async execute(interaction, ctx) {
    const prompt = interaction.options.getString('prompt') ?? undefined;
    const instructions = interaction.options.getString('instructions') ?? undefined;
    const channel = interaction.channel;
    if (!channel || !interaction.inGuild()) throw new BadInputError('Use /chat in a server channel.');

    await interaction.deferReply({ flags: channel.isThread() ? MessageFlags.Ephemeral : undefined });
    const thread = channel.isThread()
      ? channel
      : channel.type === ChannelType.GuildText
        ? await channel.threads.create({
            name: truncate(prompt ?? `Chat with ${interaction.user.displayName}`, 90),
            type: ChannelType.PublicThread,
            reason: `threadfork /chat by ${interaction.user.id}`,
          })
        : undefined;
    if (!thread) throw new BadInputError('Use /chat in a text channel or in a thread.');

    await ctx.threads.startThread({
      threadId: thread.id,
      guildId: interaction.guildId,
      userId: interaction.user.id,
      instructions,
    });
    await interaction.editReply({
      content: channel.isThread()
        ? 'This thread is now a conversation with the model: every message gets a reply.'
        : `🧵 Started ${thread.toString()}`,
      allowedMentions: NO_PINGS,
    });
    if (prompt) {
      // The prompt is an option, not a message: show it in the thread as the invoker's words, then answer it.
      const shown = await thread.send({
        content: promptEcho(interaction.user.displayName, prompt),
        allowedMentions: NO_PINGS,
      });
      await ctx.threads.receive({
        threadId: thread.id,
        messageId: shown.id,
        authorId: interaction.user.id,
        authorName: interaction.user.displayName,
        text: prompt,
      });
    }
  },
} satisfies Command;
