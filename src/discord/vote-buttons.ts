import { MessageFlags, PermissionFlagsBits } from 'discord.js';
import type { AlternativesService } from '../core/alternatives.ts';
import { NotAllowedError } from '../core/errors.ts';
import { renderPickMenu } from './ballot.ts';
import { isModerator } from './permissions.ts';
import type { ButtonHandler } from './router.ts';

const changeText = { added: 'Your vote', moved: 'Your vote moved to', removed: 'Vote removed from' } as const;

/** Ballot buttons: vote, Close, and the moderators' pick. Every custom_id names a stored vote. */
export function voteButtons(
  alternatives: AlternativesService,
  moderatorRoleIds: readonly string[],
): Record<string, ButtonHandler> {
  return {
    async vote(interaction, [voteId = '', letter = '']) {
      if (
        interaction.memberPermissions &&
        !interaction.memberPermissions.has(PermissionFlagsBits.SendMessagesInThreads)
      ) {
        throw new NotAllowedError('Only members who can post in this thread can vote.');
      }
      await interaction.deferReply({ flags: MessageFlags.Ephemeral });
      const { vote, change } = await alternatives.vote(voteId, interaction.user.id, letter);
      const closed = vote.status === 'closed' ? ` The vote is closed: **${vote.winner}** wins.` : '';
      await interaction.editReply(`🗳️ ${changeText[change]}: **${letter}**.${closed}`);
    },
    async close(interaction, [voteId = '']) {
      await interaction.deferReply({ flags: MessageFlags.Ephemeral });
      const vote = await alternatives.close(
        voteId,
        interaction.user.id,
        isModerator(interaction, moderatorRoleIds),
      );
      await interaction.editReply(`Closed: **${vote.winner}** wins.`);
    },
    async pickmenu(interaction, [voteId = '']) {
      if (!isModerator(interaction, moderatorRoleIds)) {
        await interaction.reply({
          flags: MessageFlags.Ephemeral,
          content: '⚠️ Only moderators can pick the winner.',
        });
        return;
      }
      const vote = await alternatives.getVote(voteId);
      if (vote?.status !== 'open') {
        await interaction.reply({ flags: MessageFlags.Ephemeral, content: '⚠️ This vote is no longer open.' });
        return;
      }
      await interaction.reply({ flags: MessageFlags.Ephemeral, ...renderPickMenu(vote) });
    },
    async pick(interaction, [voteId = '', letter = '']) {
      const vote = await alternatives.pick(
        voteId,
        letter,
        interaction.user.id,
        isModerator(interaction, moderatorRoleIds),
      );
      await interaction.update({ content: `Closed: **${vote.winner}** wins.`, components: [] });
    },
  };
}
