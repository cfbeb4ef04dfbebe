import {
  ApplicationCommandOptionType,
  MessageFlags,
  PermissionFlagsBits,
  type RESTPostAPIChatInputApplicationCommandsJSONBody,
} from 'discord.js';
import { NotAllowedError } from '../core/errors.ts';
import type { Command } from '../discord/context.ts';
import { fitEmbed, NO_PINGS } from '../discord/render.ts';
import { summaryEmbed } from '../discord/wording.ts';

const data = {
  name: 'summary',
  description: 'See or reset what the model keeps of this thread’s oldest messages (moderators)',
  default_member_permissions: String(PermissionFlagsBits.ManageThreads),
  options: [
    {
      type: ApplicationCommandOptionType.Subcommand,
      name: 'show',
      description:
        'Show the summary (or compaction) that stands for the oldest messages of the active branch',
    },
    {
      type: ApplicationCommandOptionType.Subcommand,
      name: 'reset',
      description: 'Forget it: the model keeps only the latest messages, and starts a fresh summary later',
    },
  ],
} as const satisfies RESTPostAPIChatInputApplicationCommandsJSONBody;

export const summary = {
  data,
  async execute(interaction, ctx) {
    const threadId = interaction.channelId;
    const by = { userId: interaction.user.id, isModerator: ctx.isModerator(interaction) };
    // Discord hides the command from others by default, but server admins can change that: check again.
    if (!by.isModerator)
      throw new NotAllowedError('Only moderators (Manage Threads, or a moderator role) can use /summary.');
    if (interaction.options.getSubcommand() === 'reset') {
      await interaction.deferReply({ flags: MessageFlags.Ephemeral });
      const reset = await ctx.threads.resetSummary(threadId, by);
      await interaction.editReply(
        reset
          ? 'Done: the summary is forgotten. The model now sees only the latest messages, and starts a fresh summary when the thread grows past its threshold again.'
          : 'There is no summary to reset: the model still reads this branch’s whole history.',
      );
      return;
    }
    const view = await ctx.threads.summary(threadId, by);
    await interaction.reply({
      flags: MessageFlags.Ephemeral,
      embeds: [fitEmbed(summaryEmbed(view))],
      allowedMentions: NO_PINGS,
    });
  },
} satisfies Command;
