import {
  ApplicationCommandOptionType,
  AttachmentBuilder,
  ButtonStyle,
  MessageFlags,
  PermissionFlagsBits,
  type RESTPostAPIChatInputApplicationCommandsJSONBody,
} from 'discord.js';
import type { BranchView } from '../core/branch-tree.ts';
import { BadInputError, NotAllowedError } from '../core/errors.ts';
import { branchTreeSvg, svgToPng } from '../discord/charts.ts';
import type { Command } from '../discord/context.ts';
import { customId } from '../discord/custom-ids.ts';
import {
  button,
  buttonRow,
  DISCORD_LIMITS,
  fitEmbed,
  fitText,
  NO_PINGS,
  truncate,
} from '../discord/render.ts';
import { actionSummary, branchLabel, idList } from '../discord/wording.ts';

const data = {
  name: 'branch',
  description: "See, switch and reset this thread's branches (moderators)",
  default_member_permissions: String(PermissionFlagsBits.ManageThreads),
  options: [
    {
      type: ApplicationCommandOptionType.Subcommand,
      name: 'list',
      description: "Show the thread's branch tree",
      options: [
        {
          type: ApplicationCommandOptionType.Integer,
          name: 'page',
          description: 'Page of a long tree',
          min_value: 1,
        },
      ],
    },
    {
      type: ApplicationCommandOptionType.Subcommand,
      name: 'switch',
      description: 'Continue the thread on another branch',
      options: [
        {
          type: ApplicationCommandOptionType.String,
          name: 'branch',
          description: 'Branch id, like b2',
          required: true,
          autocomplete: true,
        },
      ],
    },
    {
      type: ApplicationCommandOptionType.Subcommand,
      name: 'reset',
      description: 'Undo the last fork, or go back to a branch’s fork point, or start afresh',
      options: [
        {
          type: ApplicationCommandOptionType.String,
          name: 'to',
          description: 'A branch id, or root for a fresh start',
          autocomplete: true,
        },
      ],
    },
    {
      type: ApplicationCommandOptionType.Subcommand,
      name: 'prune',
      description: 'Delete the inactive branches (asks first)',
    },
  ],
} as const satisfies RESTPostAPIChatInputApplicationCommandsJSONBody;

export const BRANCHES_PER_PAGE = 15;

export function branchLine(branch: BranchView): string {
  const indent = '\u2003'.repeat(Math.min(branch.depth, 6));
  const marker = branch.active ? '▶' : '•';
  const origin = branch.parentId ? `from ${branch.parentId}` : 'root';
  const when = `<t:${Math.floor(branch.createdAt / 1000)}:R>`;
  const turns = `${branch.turns} turn${branch.turns === 1 ? '' : 's'}`;
  // Where it forked: after how many items (messages and replies) of its parent's history.
  const fork = branch.parentId ? ` · forked at item ${branch.forkPoint}` : '';
  const text = `${indent}${marker} **${branch.id}** ${truncate(branchLabel(branch), 60)} · ${origin} · ${turns}${fork} · <@${branch.createdBy}> ${when}${branch.active ? ' · **active**' : ''}`;
  return text;
}

export function renderBranchList(branches: BranchView[], page: number) {
  const pages = Math.max(1, Math.ceil(branches.length / BRANCHES_PER_PAGE));
  const current = Math.min(Math.max(1, page), pages);
  const shown = branches.slice((current - 1) * BRANCHES_PER_PAGE, current * BRANCHES_PER_PAGE);
  return {
    title: `Branches (${branches.length})${pages > 1 ? ` · page ${current} of ${pages}` : ''}`,
    description: shown.map(branchLine).join('\n'),
  };
}

export const branch = {
  data,
  async execute(interaction, ctx) {
    const threadId = interaction.channelId;
    const by = { userId: interaction.user.id, isModerator: ctx.isModerator(interaction) };
    // Discord hides the command from others by default, but server admins can change that: check again.
    if (!by.isModerator)
      throw new NotAllowedError('Only moderators (Manage Threads, or a moderator role) can use /branch.');
    const sub = interaction.options.getSubcommand();
    if (sub === 'list') {
      const branches = await ctx.threads.listBranches(threadId);
      const png = svgToPng(branchTreeSvg(branches));
      await interaction.reply({
        flags: MessageFlags.Ephemeral,
        embeds: [
          {
            ...fitEmbed(renderBranchList(branches, interaction.options.getInteger('page') ?? 1)),
            image: { url: 'attachment://branches.png' },
          },
        ],
        files: [new AttachmentBuilder(png, { name: 'branches.png' })],
        allowedMentions: NO_PINGS,
      });
      return;
    }
    if (sub === 'prune') {
      const doomed = await ctx.threads.prunable(threadId);
      if (doomed.length === 0) throw new BadInputError('There are no inactive branches to prune.');
      await interaction.reply({
        flags: MessageFlags.Ephemeral,
        content: fitText(
          `Delete ${doomed.length} inactive branch${doomed.length === 1 ? '' : 'es'} (${idList(doomed.map((b) => b.id))}) and their conversations? This cannot be undone.`,
        ),
        components: [
          buttonRow(button(customId({ kind: 'prune', threadId }), 'Delete them', ButtonStyle.Danger)),
        ],
      });
      return;
    }
    await interaction.deferReply({ flags: MessageFlags.Ephemeral });
    const action = await ctx.threads.moderate(
      threadId,
      sub === 'switch'
        ? { action: 'switch', branchId: interaction.options.getString('branch', true).trim() }
        : { action: 'reset', to: interaction.options.getString('to')?.trim() || undefined },
      by,
    );
    await interaction.editReply(fitText(`Done: ${actionSummary(action)}.`));
  },
  async autocomplete(interaction, ctx) {
    const typed = interaction.options.getFocused().toLowerCase();
    const branches = await ctx.threads.listBranches(interaction.channelId).catch(() => []);
    const choices = [
      ...(interaction.options.getSubcommand() === 'reset'
        ? [{ name: 'root — start afresh', value: 'root' }]
        : []),
      ...branches.map((b) => ({
        name: truncate(
          `${b.id} — ${branchLabel(b)}${b.active ? ' (active)' : ''}`,
          DISCORD_LIMITS.choiceName,
        ),
        value: b.id,
      })),
    ];
    await interaction.respond(choices.filter((c) => c.name.toLowerCase().includes(typed)).slice(0, 25));
  },
} satisfies Command;
