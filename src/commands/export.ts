import { gzipSync } from 'node:zlib';
import {
  ApplicationCommandOptionType,
  AttachmentBuilder,
  MessageFlags,
  PermissionFlagsBits,
  type RESTPostAPIChatInputApplicationCommandsJSONBody,
} from 'discord.js';
import { BadInputError, NotAllowedError } from '../core/errors.ts';
import type { Command } from '../discord/context.ts';

/** Discord's attachment limit for a server without boosts, less room for the request around it. */
const MAX_ATTACHMENT = 9.5 * 1024 * 1024;

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
    const jsonl = Buffer.from(rows.map((row) => `${JSON.stringify(row)}\n`).join(''));
    // Discord refuses attachments past its size limit (10 MiB without boosts): a big export goes gzipped.
    const gzipped = jsonl.length > MAX_ATTACHMENT;
    const body = gzipped ? gzipSync(jsonl) : jsonl;
    if (body.length > MAX_ATTACHMENT)
      throw new BadInputError('The export is larger than Discord accepts as a file, even compressed.');
    await interaction.editReply({
      content: `${rows.length} preference pair${rows.length === 1 ? '' : 's'} from ${new Set(rows.map((r) => r.vote_id)).size} votes: the winner (chosen) over each other alternative (rejected). Voters are salted hashes.${gzipped ? ' Gzipped: it is large.' : ''}`,
      files: [new AttachmentBuilder(body, { name: gzipped ? 'votes.jsonl.gz' : 'votes.jsonl' })],
    });
  },
} satisfies Command;
