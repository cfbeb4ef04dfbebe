import {
  ApplicationCommandOptionType,
  MessageFlags,
  type RESTPostAPIChatInputApplicationCommandsJSONBody,
} from 'discord.js';
import type { ThreadSettings } from '../core/model.ts';
import type { SettingsPatch } from '../core/settings.ts';
import type { Command } from '../discord/context.ts';
import { fitEmbed, fitText, truncate } from '../discord/render.ts';

const data = {
  name: 'settings',
  description: "Show this thread's settings; moderators can change them",
  options: [
    {
      type: ApplicationCommandOptionType.String,
      name: 'model',
      description: 'Model for replies',
      max_length: 100,
    },
    {
      type: ApplicationCommandOptionType.String,
      name: 'instructions',
      description: 'Instructions for the model ("-" clears them)',
      max_length: 4000,
    },
    {
      type: ApplicationCommandOptionType.Integer,
      name: 'alternatives',
      description: 'Default count for /alternatives',
      min_value: 2,
      max_value: 5,
    },
    {
      type: ApplicationCommandOptionType.Integer,
      name: 'auto_alternatives',
      description: 'Give every message this many alternatives (0: off)',
      min_value: 0,
      max_value: 5,
    },
    {
      type: ApplicationCommandOptionType.Boolean,
      name: 'alternatives_enabled',
      description: 'Allow /alternatives in this thread',
    },
    {
      type: ApplicationCommandOptionType.Integer,
      name: 'quorum',
      description: 'Votes that decide a vote at once (0: a majority of the people active in the last 30 min)',
      min_value: 0,
      max_value: 100,
    },
    {
      type: ApplicationCommandOptionType.Integer,
      name: 'vote_seconds',
      description: 'How long a vote stays open',
      min_value: 5,
      max_value: 86400,
    },
    {
      type: ApplicationCommandOptionType.Boolean,
      name: 'blind',
      description: 'Vote blind: letters only, shuffled; models and styles shown when the vote closes',
    },
    {
      type: ApplicationCommandOptionType.Boolean,
      name: 'gather',
      description: 'Answer messages that arrive during a reply together, in one turn',
    },
  ],
} as const satisfies RESTPostAPIChatInputApplicationCommandsJSONBody;

/** Instructions are shown up to this length (the embed's description holds 4096 characters in all). */
const INSTRUCTIONS_SHOWN = 3000;

function describeInstructions(instructions: string | undefined): string {
  if (!instructions) return '(none)';
  if (instructions.length <= INSTRUCTIONS_SHOWN) return instructions;
  return `${fitText(instructions, INSTRUCTIONS_SHOWN)}\n-# (${instructions.length} characters; the model gets them all)`;
}

export function describeSettings(settings: ThreadSettings): string {
  return [
    `**Model:** ${truncate(settings.model, 100)}`,
    `**Instructions:** ${describeInstructions(settings.instructions)}`,
    `**Alternatives:** ${settings.alternativesEnabled ? `on, ${settings.alternativesCount} by default` : 'off'}`,
    `**Automatic alternatives:** ${settings.autoAlternatives >= 2 ? `${settings.autoAlternatives} for every message` : 'off'}`,
    `**Vote:** closes at ${settings.quorum > 0 ? `${settings.quorum} vote${settings.quorum === 1 ? '' : 's'}` : 'a majority of the people active in the last 30 minutes'} for one alternative, or after ${Math.round(settings.voteMs / 1000)} s${settings.blind ? '; blind (letters only until it closes)' : ''}`,
    `**Messages during a reply:** ${settings.gatherMessages ? 'answered together' : 'answered one by one'}`,
  ].join('\n');
}

export const settings = {
  data,
  async execute(interaction, ctx) {
    const o = interaction.options;
    const instructions = o.getString('instructions');
    const patch: SettingsPatch = Object.fromEntries(
      Object.entries({
        model: o.getString('model') ?? undefined,
        instructions: instructions === '-' ? undefined : (instructions ?? undefined),
        alternativesCount: o.getInteger('alternatives') ?? undefined,
        autoAlternatives: o.getInteger('auto_alternatives') ?? undefined,
        alternativesEnabled: o.getBoolean('alternatives_enabled') ?? undefined,
        quorum: o.getInteger('quorum') ?? undefined,
        voteSeconds: o.getInteger('vote_seconds') ?? undefined,
        gatherMessages: o.getBoolean('gather') ?? undefined,
        blind: o.getBoolean('blind') ?? undefined,
      }).filter(([, value]) => value !== undefined),
    );
    const clearing = instructions === '-';
    const changing = Object.keys(patch).length > 0 || clearing;
    const current = changing
      ? await ctx.settings.change(
          interaction.channelId,
          { ...patch, ...(clearing ? { instructions: undefined } : {}) },
          {
            isModerator: ctx.isModerator(interaction),
          },
        )
      : await ctx.settings.show(interaction.channelId);
    await interaction.reply({
      flags: MessageFlags.Ephemeral,
      embeds: [
        fitEmbed({
          title: changing ? 'Thread settings updated' : 'Thread settings',
          description: describeSettings(current),
        }),
      ],
    });
  },
} satisfies Command;
