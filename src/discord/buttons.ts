import { type ButtonInteraction, MessageFlags, PermissionFlagsBits } from 'discord.js';
import { NotAllowedError } from '../core/errors.ts';
import { voteOf } from '../core/votes.ts';
import { renderPickMenu } from './ballot.ts';
import type { BotContext } from './context.ts';
import type { ButtonAction } from './custom-ids.ts';
import { DISCORD_LIMITS, NO_PINGS, withoutButton } from './render.ts';
import { splitMessage } from './split-message.ts';
import { actionSummary } from './wording.ts';

/** "Read B in full" answers in at most this many messages; a longer text comes as a file. */
const FULL_TEXT_MESSAGES = 4;

const changeText = { added: 'Your vote', moved: 'Your vote moved to', removed: 'Vote removed from' } as const;

/** One handler per button kind; each gets the parsed custom_id and the same context as the commands. */
export type ButtonHandlers = {
  [K in ButtonAction['kind']]: (
    interaction: ButtonInteraction,
    action: Extract<ButtonAction, { kind: K }>,
    ctx: BotContext,
  ) => Promise<void>;
};

const by = (interaction: ButtonInteraction, ctx: BotContext) => ({
  userId: interaction.user.id,
  isModerator: ctx.isModerator(interaction),
});

export const buttonHandlers: ButtonHandlers = {
  async stop(interaction, { turnId }, ctx) {
    ctx.threads.stopReply(turnId, by(interaction, ctx));
    // The reply's own final edit removes the button; the click itself needs no message.
    await interaction.deferUpdate();
  },

  async retry(interaction, { threadId, messageId }, ctx) {
    await ctx.threads.retry(threadId, messageId);
    // On a live ballot the Retry button is one alternative's: only it goes, the ballot stays.
    await interaction.update({
      components: interaction.message.flags.has(MessageFlags.IsComponentsV2)
        ? withoutButton(interaction.message, interaction.customId)
        : [],
    });
    await interaction.followUp({ flags: MessageFlags.Ephemeral, content: 'Trying again…' });
  },

  async vote(interaction, { voteId, letter }, ctx) {
    if (
      interaction.memberPermissions &&
      !interaction.memberPermissions.has(PermissionFlagsBits.SendMessagesInThreads)
    ) {
      throw new NotAllowedError('Only members who can post in this thread can vote.');
    }
    await interaction.deferReply({ flags: MessageFlags.Ephemeral });
    const { vote, change } = await ctx.threads.castBallot(
      interaction.channelId,
      voteId,
      interaction.user.id,
      letter,
    );
    const closed =
      vote.status === 'closed' || vote.status === 'applied'
        ? ` The vote is closed: **${vote.winner}** wins.`
        : '';
    await interaction.editReply(`🗳️ ${changeText[change]}: **${letter}**.${closed}`);
  },

  async close(interaction, { voteId }, ctx) {
    await interaction.deferReply({ flags: MessageFlags.Ephemeral });
    const vote = await ctx.threads.closeVote(interaction.channelId, voteId, by(interaction, ctx));
    await interaction.editReply(`Closed: **${vote.winner}** wins.`);
  },

  async pickmenu(interaction, { voteId }, ctx) {
    if (!ctx.isModerator(interaction)) throw new NotAllowedError('Only moderators can pick the winner.');
    const session = await ctx.threads.get(interaction.channelId);
    const vote = session ? voteOf(session, voteId) : undefined;
    if (vote?.status !== 'open') {
      await interaction.reply({ flags: MessageFlags.Ephemeral, content: '⚠️ This vote is no longer open.' });
      return;
    }
    await interaction.reply({ flags: MessageFlags.Ephemeral, ...renderPickMenu(vote) });
  },

  async pick(interaction, { voteId, letter }, ctx) {
    const vote = await ctx.threads.pickWinner(interaction.channelId, voteId, letter, by(interaction, ctx));
    await interaction.update({ content: `Closed: **${vote.winner}** wins.`, components: [] });
  },

  async full(interaction, { branchId, from }, ctx) {
    await interaction.deferReply({ flags: MessageFlags.Ephemeral });
    const text = await ctx.threads.alternativeText(interaction.channelId, branchId, from);
    const [first = '…', ...rest] = splitMessage(text, DISCORD_LIMITS.content);
    // A few messages read well; a longer text comes whole as a file, with its first part shown.
    if (rest.length > FULL_TEXT_MESSAGES - 1) {
      await interaction.editReply({
        content: first,
        files: [{ attachment: Buffer.from(text, 'utf8'), name: 'alternative.md' }],
        allowedMentions: NO_PINGS,
      });
      return;
    }
    await interaction.editReply({ content: first, allowedMentions: NO_PINGS });
    for (const part of rest)
      await interaction.followUp({ flags: MessageFlags.Ephemeral, content: part, allowedMentions: NO_PINGS });
  },

  async prune(interaction, { threadId }, ctx) {
    await interaction.deferUpdate();
    const action = await ctx.threads.moderate(threadId, { action: 'prune' }, by(interaction, ctx));
    await interaction.editReply({ content: `Done: ${actionSummary(action)}.`, components: [] });
  },
};
