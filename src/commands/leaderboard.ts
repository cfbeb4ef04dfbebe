import {
  ApplicationCommandOptionType,
  AttachmentBuilder,
  type RESTPostAPIChatInputApplicationCommandsJSONBody,
} from 'discord.js';
import type { LeaderboardPeriod } from '../core/arena.ts';
import { BadInputError } from '../core/errors.ts';
import { DEFAULT_LEADERBOARD, type LeaderboardBy, type Rating } from '../core/leaderboard.ts';
import { CHART_ROWS, leaderboardSvg, svgToPng } from '../discord/charts.ts';
import type { Command } from '../discord/context.ts';
import { NO_PINGS, truncate } from '../discord/render.ts';

const data = {
  name: 'leaderboard',
  description: "This server's models and styles, rated from the votes (Bradley-Terry, 95% intervals)",
  options: [
    {
      type: ApplicationCommandOptionType.String,
      name: 'by',
      description: 'What to rate (default: model)',
      choices: [
        { name: 'model', value: 'model' },
        { name: 'style', value: 'style' },
        { name: 'model and style', value: 'both' },
      ],
    },
    {
      type: ApplicationCommandOptionType.String,
      name: 'period',
      description: 'Votes from the last week, month, or all (default: all)',
      choices: [
        { name: 'last 7 days', value: 'week' },
        { name: 'last 30 days', value: 'month' },
        { name: 'all time', value: 'all' },
      ],
    },
  ],
} as const satisfies RESTPostAPIChatInputApplicationCommandsJSONBody;

const BY_NAMES: Record<LeaderboardBy, string> = {
  model: 'Models',
  style: 'Styles',
  both: 'Models and styles',
};
const PERIOD_NAMES: Record<LeaderboardPeriod, string> = {
  week: 'last 7 days',
  month: 'last 30 days',
  all: 'all time',
};
/** Table rows in the embed: 25 lines of ~70 characters stay far below the 4096 of a description. */
const TABLE_ROWS = 25;

/** The ranked table, in a code block so the columns line up. */
export function leaderboardTable(ratings: readonly Rating[]): string {
  const lines = ratings.slice(0, TABLE_ROWS).map((r, i) => {
    const rank = String(i + 1).padStart(2);
    const name = truncate(r.key, 28).padEnd(28);
    const rating = Math.round(r.rating).toString().padStart(5);
    const interval = `+${Math.round(r.high - r.rating)}/-${Math.round(r.rating - r.low)}`.padEnd(9);
    return `${rank} ${name} ${rating} ${interval} ${r.wins}/${r.comparisons}`;
  });
  const header = ` # ${'entry'.padEnd(28)} ${'score'.padStart(5)} ${'95% CI'.padEnd(9)} won/played`;
  const more = ratings.length > TABLE_ROWS ? `\n… and ${ratings.length - TABLE_ROWS} more` : '';
  return `\`\`\`\n${header}\n${lines.join('\n')}\n\`\`\`${more}`;
}

export const leaderboard = {
  data,
  async execute(interaction, ctx) {
    if (!interaction.inGuild()) throw new BadInputError('Use /leaderboard in a server.');
    const by = (interaction.options.getString('by') ?? 'model') as LeaderboardBy;
    const period = (interaction.options.getString('period') ?? 'all') as LeaderboardPeriod;
    await interaction.deferReply();
    const { ratings, votes } = await ctx.arena.leaderboard(interaction.guildId, by, period);
    const title = `${BY_NAMES[by]} · ${PERIOD_NAMES[period]}`;
    if (ratings.length === 0) {
      await interaction.editReply({
        embeds: [
          {
            title: `Leaderboard: ${title}`,
            description: `Not enough votes yet (${votes} vote${votes === 1 ? '' : 's'} in this period). An entry shows once it has been compared at least ${DEFAULT_LEADERBOARD.minComparisons} times: use /alternatives with several models or styles, and vote.`,
          },
        ],
        allowedMentions: NO_PINGS,
      });
      return;
    }
    const png = svgToPng(leaderboardSvg(ratings, title));
    await interaction.editReply({
      embeds: [
        {
          title: `Leaderboard: ${title}`,
          description: leaderboardTable(ratings),
          image: { url: 'attachment://leaderboard.png' },
          footer: {
            text: `${votes} votes · Bradley-Terry scores (mean 1000; +400 is 10:1 odds), 95% bootstrap intervals · entries with at least ${DEFAULT_LEADERBOARD.minComparisons} comparisons${ratings.length > CHART_ROWS ? ` · chart shows the top ${CHART_ROWS}` : ''}`,
          },
        },
      ],
      files: [new AttachmentBuilder(png, { name: 'leaderboard.png' })],
      allowedMentions: NO_PINGS,
    });
  },
} satisfies Command;
