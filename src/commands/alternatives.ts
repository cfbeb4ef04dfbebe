import {
  ApplicationCommandOptionType,
  MessageFlags,
  type RESTPostAPIChatInputApplicationCommandsJSONBody,
} from 'discord.js';
import { BadInputError } from '../core/errors.ts';
import type { Command } from '../discord/context.ts';
import { NO_PINGS, promptEcho } from '../discord/render.ts';

const data = {
  name: 'alternatives',
  description: 'Get several replies at once; the thread votes on which one it continues with',
  options: [
    {
      type: ApplicationCommandOptionType.Integer,
      name: 'count',
      description: 'How many alternatives (2 to 5)',
      min_value: 2,
      max_value: 5,
    },
    {
      type: ApplicationCommandOptionType.String,
      name: 'prompt',
      description: 'Your next message (default: answer the last message again)',
      max_length: 4000,
    },
    {
      type: ApplicationCommandOptionType.String,
      name: 'styles',
      description: 'Extra instructions per alternative, separated by | (formal | funny)',
      max_length: 1000,
    },
    {
      type: ApplicationCommandOptionType.String,
      name: 'models',
      description: 'Models to compare, separated by commas',
      max_length: 500,
    },
    {
      type: ApplicationCommandOptionType.Number,
      name: 'temperature',
      description: 'Sampling temperature (0 to 2)',
      min_value: 0,
      max_value: 2,
    },
  ],
} as const satisfies RESTPostAPIChatInputApplicationCommandsJSONBody;

export const alternatives = {
  data,
  async execute(interaction, ctx) {
    const o = interaction.options;
    const count = o.getInteger('count') ?? undefined;
    const prompt = o.getString('prompt')?.trim() || undefined;
    const styles = (o.getString('styles') ?? '').split('|').map((s) => s.trim());
    const models = (o.getString('models') ?? '').split(',').map((s) => s.trim());
    const temperature = o.getNumber('temperature') ?? undefined;
    if (temperature !== undefined && (temperature < 0 || temperature > 2))
      throw new BadInputError('The temperature must be between 0 and 2.');
    const thread = interaction.channel;
    if (!thread?.isThread()) throw new BadInputError('Use /alternatives in a thread started with /chat.');
    const who = {
      threadId: thread.id,
      userId: interaction.user.id,
      isModerator: ctx.isModerator(interaction),
    };
    // Refuse bad input before anything shows in the thread.
    const wanted = await ctx.threads.checkAlternatives({
      ...who,
      count,
      styles,
      models,
      withPrompt: prompt !== undefined,
    });
    if (models.filter(Boolean).length > wanted || styles.filter(Boolean).length > wanted) {
      throw new BadInputError(`You gave more styles or models than the ${wanted} alternatives asked for.`);
    }

    await interaction.deferReply({ flags: MessageFlags.Ephemeral });
    let shownPrompt: { messageId: string; authorName: string; text: string } | undefined;
    if (prompt) {
      const authorName = interaction.user.displayName;
      const message = await thread.send({
        content: promptEcho(authorName, prompt),
        allowedMentions: NO_PINGS,
      });
      shownPrompt = { messageId: message.id, authorName, text: prompt };
    }
    const vote = await ctx.threads.requestAlternatives({
      ...who,
      count,
      prompt: shownPrompt,
      styles,
      models,
      temperature,
    });
    const finished = vote.options.filter((option: { status: string }) => option.status === 'ok').length;
    await interaction.editReply(`Vote opened on ${finished} alternative${finished === 1 ? '' : 's'}.`);
  },
} satisfies Command;
