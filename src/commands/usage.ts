import {
  type APIEmbedField,
  ApplicationCommandOptionType,
  MessageFlags,
  type RESTPostAPIChatInputApplicationCommandsJSONBody,
} from 'discord.js';
import { totalTokens, type UsageRecord, type UsageReport } from '../core/budgets.ts';
import { NotAllowedError } from '../core/errors.ts';
import type { Command } from '../discord/context.ts';
import { truncate } from '../discord/render.ts';
import { usageChart } from '../discord/usage-chart.ts';
import { tokens, when } from '../discord/wording.ts';

const data = {
  name: 'usage',
  description: 'Tokens and estimated cost today and this month: yours, this thread’s, or the server’s',
  options: [
    {
      type: ApplicationCommandOptionType.String,
      name: 'of',
      description: 'Whose usage (default: yours)',
      choices: [
        { name: 'me', value: 'me' },
        { name: 'this thread', value: 'thread' },
        { name: 'this server (moderators)', value: 'server' },
      ],
    },
  ],
} as const satisfies RESTPostAPIChatInputApplicationCommandsJSONBody;

export const dollars = (usd: number) => `$${usd < 1 ? usd.toFixed(4) : usd.toFixed(2)}`;

function periodField(name: string, record: UsageRecord, limit: number | undefined, resetsAt: number) {
  const used = totalTokens(record.tokens);
  const t = record.tokens;
  const lines = [
    `**${tokens(used)}** tokens${limit ? ` of ${tokens(limit)} (${tokens(Math.max(0, limit - used))} left)` : ''}`,
    `input ${tokens(t.input)} · cached ${tokens(t.cachedInput)} · output ${tokens(t.output)}`,
    `≈ ${dollars(record.cost)}${record.unpriced ? ' (some models have no price)' : ''} · ${record.generations} generation${record.generations === 1 ? '' : 's'}`,
  ];
  if (limit) lines.push(`resets ${when(resetsAt)}`);
  return { name, value: lines.join('\n') } satisfies APIEmbedField;
}

/** The embed's fields: today, this month, top models this month. */
export function usageFields(report: UsageReport): APIEmbedField[] {
  const fields = [
    periodField('Today (UTC)', report.day, report.limits?.day, report.resets.day),
    periodField('This month (UTC)', report.month, report.limits?.month, report.resets.month),
  ];
  const top = report.month.models.slice(0, 5);
  if (top.length > 0)
    fields.push({
      name: 'Top models this month',
      value: top
        .map((m) => `${truncate(m.model, 60)}: ${tokens(m.tokens)} tokens · ≈ ${dollars(m.cost)}`)
        .join('\n'),
    });
  return fields;
}

export const usage = {
  data,
  async execute(interaction, ctx) {
    const of = interaction.options.getString('of') ?? 'me';
    const guildId = interaction.guildId ?? undefined;
    let title: string;
    let report: UsageReport;
    if (of === 'server') {
      if (!ctx.isModerator(interaction) && !ctx.canManageServer(interaction))
        throw new NotAllowedError("Only moderators can see the server's usage.");
      title = "This server's usage";
      report = await ctx.budgets.report({ kind: 'server', guildId });
    } else if (of === 'thread') {
      title = "This thread's usage";
      report = await ctx.budgets.report({ kind: 'thread', threadId: interaction.channelId });
    } else {
      title = 'Your usage';
      report = await ctx.budgets.report({ kind: 'user', guildId, userId: interaction.user.id });
    }
    await interaction.deferReply({ flags: MessageFlags.Ephemeral });
    const png = usageChart(title, report);
    await interaction.editReply({
      embeds: [{ title, fields: usageFields(report), image: { url: 'attachment://usage.png' } }],
      files: [{ attachment: png, name: 'usage.png' }],
    });
  },
} satisfies Command;
