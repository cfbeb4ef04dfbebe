import type { BranchService } from '../core/branches.ts';
import { isModerator } from './permissions.ts';
import type { ButtonHandler } from './router.ts';

/** The confirmation button of /branch prune. */
export function branchButtons(
  branches: BranchService,
  moderatorRoleIds: readonly string[],
): Record<string, ButtonHandler> {
  return {
    async prune(interaction, [threadId = '']) {
      await interaction.deferUpdate();
      const action = await branches.prune(threadId, {
        userId: interaction.user.id,
        isModerator: isModerator(interaction, moderatorRoleIds),
      });
      await interaction.editReply({ content: `Done: ${action.summary}.`, components: [] });
    },
  };
}
