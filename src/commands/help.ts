import {
  ApplicationCommandOptionType,
  MessageFlags,
  type RESTPostAPIChatInputApplicationCommandsJSONBody,
} from 'discord.js';
import type { Command } from '../discord/context.ts';

const data = {
  name: 'help',
  description: 'How threadfork works, and its commands',
} as const satisfies RESTPostAPIChatInputApplicationCommandsJSONBody;

/** One line per command (and per subcommand), built from the definitions so it never goes stale. */
export function commandReference(commands: readonly Command[]): string {
  return commands
    .flatMap(({ data: command }) => {
      const subcommands = (command.options ?? []).filter(
        (o) => o.type === ApplicationCommandOptionType.Subcommand,
      );
      if (subcommands.length === 0) return [`**/${command.name}** — ${command.description}`];
      return subcommands.map((sub) => `**/${command.name} ${sub.name}** — ${sub.description}`);
    })
    .join('\n');
}

export const help = {
  data,
  async execute(interaction, ctx) {
    await interaction.reply({
      flags: MessageFlags.Ephemeral,
      embeds: [
        {
          title: 'threadfork',
          description: [
            'Chat with a model in a thread: every message in a thread started with /chat gets a reply.',
            'Use /alternatives to get several replies at once; the thread votes on which one it continues with.',
            '',
            commandReference(ctx.commands),
            ...ctx.messageCommands.map((c) => `**${c.data.name}** (Apps menu of a message) — ${c.help}`),
          ].join('\n'),
        },
      ],
    });
  },
} satisfies Command;
