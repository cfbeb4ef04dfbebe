import { MessageFlags } from 'discord.js';
import type { RunningTurns } from '../core/running-turns.ts';
import type { TurnService } from '../core/turns.ts';
import { isModerator } from './permissions.ts';
import type { ButtonHandler } from './router.ts';

/** The Stop button of a streaming reply and the Retry button of a failed one. */
export function turnButtons(
  turns: TurnService,
  running: RunningTurns,
  moderatorRoleIds: readonly string[],
): Record<string, ButtonHandler> {
  return {
    async stop(interaction, [turnId = '']) {
      running.stop(turnId, interaction.user.id, isModerator(interaction, moderatorRoleIds));
      // The reply's own final edit removes the button; the click itself needs no message.
      await interaction.deferUpdate();
    },
    async retry(interaction, [threadId = '', messageId = '']) {
      await turns.retry(threadId, messageId);
      await interaction.update({ components: [] });
      await interaction.followUp({ flags: MessageFlags.Ephemeral, content: 'Trying again…' });
    },
  };
}
