import {
  ApplicationCommandOptionType,
  MessageFlags,
  type RESTPostAPIChatInputApplicationCommandsJSONBody,
} from 'discord.js';
import type { BudgetLimits } from '../core/budgets.ts';
import type { Command } from '../discord/context.ts';
import { tokens } from '../discord/wording.ts';

const data = {
  name: 'budget',
  description: "This server's token budgets; members with Manage Server can change them",
  options: [
    {
      type: ApplicationCommandOptionType.Subcommand,
      name: 'show',
      description: "Show this server's token budgets",
    },
    {
      type: ApplicationCommandOptionType.Subcommand,
      name: 'set',
      description: 'Set a budget in tokens, 0 for unlimited (Manage Server)',
      options: [
        {
          type: ApplicationCommandOptionType.String,
          name: 'scope',
          description: 'Per person, or for the whole server',
          required: true,
          choices: [
            { name: 'per person', value: 'user' },
            { name: 'whole server', value: 'server' },
          ],
        },
        {
          type: ApplicationCommandOptionType.String,
          name: 'period',
          description: 'Per day or per month (UTC)',
          required: true,
          choices: [
            { name: 'day', value: 'day' },
            { name: 'month', value: 'month' },
          ],
        },
        {
          type: ApplicationCommandOptionType.Integer,
          name: 'tokens',
          description: 'Tokens (input and output); 0: unlimited',
          required: true,
          min_value: 0,
        },
      ],
    },
    {
      type: ApplicationCommandOptionType.Subcommand,
      name: 'reset',
      description: "Go back to the bot's default budgets (Manage Server)",
    },
  ],
} as const satisfies RESTPostAPIChatInputApplicationCommandsJSONBody;

const field = {
  user: { day: 'userDaily', month: 'userMonthly' },
  server: { day: 'serverDaily', month: 'serverMonthly' },
} as const;

export function describeLimits(l: BudgetLimits): string {
  const show = (n: number) => (n > 0 ? `${tokens(n)} tokens` : 'unlimited');
  return [
    `**Per person:** ${show(l.userDaily)} a day, ${show(l.userMonthly)} a month`,
    `**Whole server:** ${show(l.serverDaily)} a day, ${show(l.serverMonthly)} a month`,
    'Days and months are UTC. `/usage` shows what is used.',
  ].join('\n');
}

export const budget = {
  data,
  async execute(interaction, ctx) {
    const o = interaction.options;
    const guildId = interaction.guildId ?? undefined;
    const sub = o.getSubcommand();
    const by = { canManageServer: ctx.canManageServer(interaction) };
    let limits: BudgetLimits;
    if (sub === 'set') {
      const scope = o.getString('scope', true) as keyof typeof field;
      const period = o.getString('period', true) as 'day' | 'month';
      limits = await ctx.budgets.setLimits(
        guildId,
        { [field[scope][period]]: o.getInteger('tokens', true) },
        by,
      );
    } else if (sub === 'reset') {
      limits = await ctx.budgets.setLimits(
        guildId,
        { userDaily: null, userMonthly: null, serverDaily: null, serverMonthly: null },
        by,
      );
    } else {
      limits = await ctx.budgets.limits(guildId);
    }
    await interaction.reply({
      flags: MessageFlags.Ephemeral,
      embeds: [
        {
          title: sub === 'show' ? 'Token budgets' : 'Token budgets updated',
          description: describeLimits(limits),
        },
      ],
    });
  },
} satisfies Command;
