import {
  ApplicationCommandOptionType,
  AttachmentBuilder,
  MessageFlags,
  PermissionFlagsBits,
  type RESTPostAPIChatInputApplicationCommandsJSONBody,
} from 'discord.js';
import { BadInputError, NotAllowedError } from '../core/errors.ts';
import type { Command } from '../discord/context.ts';

const data = {
  name: 'export',
  description: "Export this server's data (Manage Server)",
  default_member_permissions: String(PermissionFlagsBits.ManageGuild),
  options: [
    {
      type: ApplicationCommandOptionType.Subcommand,
      name: 'votes',
      description: 'Preference pairs from the votes as JSONL, voters as salted hashes',
    },
  ],
} as const satisfies RESTPostAPIChatInputApplicationCommandsJSONBody;

export const exportCommand = {
  data,
  async execute(interaction, ctx) {
    if (!interaction.inGuild()) throw new BadInputError('Use /export in a server.');
    // Discord hides the command from others by default, but server admins can change that: check again.
    if (!interaction.memberPermissions.has(PermissionFlagsBits.ManageGuild))
      throw new NotAllowedError('Only members with Manage Server can export the votes.');
    await interaction.deferReply({ flags: MessageFlags.Ephemeral });
    const rows = await ctx.arena.exportRows(interaction.guildId);
    const jsonl = rows.map((row) => JSON.stringify(row)).join('\n');
    await interaction.editReply({
      content: `${rows.length} preference pair${rows.length === 1 ? '' : 's'} from ${new Set(rows.map((r) => r.vote_id)).size} votes: the winner (chosen) over each other alternative (rejected). Voters are salted hashes.`,
      files: [new AttachmentBuilder(Buffer.from(jsonl ? `${jsonl}\n` : ''), { name: 'votes.jsonl' })],
    });
  },
} satisfies Command;
