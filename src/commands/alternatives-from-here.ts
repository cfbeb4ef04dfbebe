import {
  ApplicationCommandType,
  MessageFlags,
  type RESTPostAPIContextMenuApplicationCommandsJSONBody,
} from 'discord.js';
import { BadInputError } from '../core/errors.ts';
import type { MessageCommand } from '../discord/context.ts';

const data = {
  type: ApplicationCommandType.Message,
  name: 'Alternatives from here',
} as const satisfies RESTPostAPIContextMenuApplicationCommandsJSONBody;

/**
 * On an earlier reply of the bot: the thread forks before that reply, with alternatives to it and a vote. The reply
 * is found by what it answered (a bot reply is a Discord reply to the person's message); the core finds that turn.
 */
export const alternativesFromHere = {
  data,
  help: 'On an earlier reply of the bot (Apps menu): fork there, with alternatives to that reply and a vote',
  async execute(interaction, ctx) {
    const target = interaction.targetMessage;
    const thread = interaction.channel;
    if (!thread?.isThread()) throw new BadInputError('Use this on a reply in a thread started with /chat.');
    const answered = target.reference?.messageId;
    if (target.author.id !== interaction.client.user.id || !answered)
      throw new BadInputError(
        'Pick a reply of the bot (the first message of it): that is the point to fork at.',
      );
    const who = {
      threadId: thread.id,
      userId: interaction.user.id,
      isModerator: ctx.isModerator(interaction),
    };
    await ctx.threads.checkAlternatives({ ...who, count: undefined });
    await interaction.deferReply({ flags: MessageFlags.Ephemeral });
    const vote = await ctx.threads.requestAlternatives({
      ...who,
      count: undefined,
      prompt: undefined,
      styles: [],
      models: [],
      temperature: undefined,
      from: answered,
    });
    const finished = vote.options.filter((option) => option.status === 'ok').length;
    await interaction.editReply(
      `Forked before that reply: vote opened on ${finished} alternative${finished === 1 ? '' : 's'} to it.`,
    );
  },
} satisfies MessageCommand;
