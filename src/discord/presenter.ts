import type { Client, Message } from 'discord.js';
import type { BallotPresenter } from '../core/alternatives.ts';
import type { Logger, ThreadPresenter } from '../core/ports.ts';
import { renderBallot } from './ballot.ts';
import { createEditQueues, type EditQueueOptions } from './edit-queue.ts';
import { NO_PINGS } from './render.ts';
import { startStreamingReply } from './streaming-reply.ts';
import { sendableThread, withUnarchive } from './thread-access.ts';

/** Discord allows about 5 edits per 5 s in a channel; keep one in reserve for ballots and notices. */
export const THREAD_EDIT_BUDGET: EditQueueOptions = { limit: 4, windowMs: 5000, spacingMs: 1250 };

export interface PresenterDeps {
  client: Client;
  logger: Logger;
  editBudget?: EditQueueOptions;
}

/** Shows replies in Discord threads: typing, then a message edited as text streams in, split past 2000 characters. */
export function createDiscordPresenter({
  client,
  logger,
  editBudget = THREAD_EDIT_BUDGET,
}: PresenterDeps): ThreadPresenter & BallotPresenter {
  const editQueues = createEditQueues(editBudget);

  return {
    async showBallot(threadId, vote) {
      const channel = await sendableThread(client, threadId);
      const message = await withUnarchive<Message<boolean>>(client, threadId, () =>
        channel.send(renderBallot(vote)),
      );
      return message.id;
    },

    async updateBallot(threadId, voteId, load) {
      const channel = await sendableThread(client, threadId);
      const queue = editQueues.forChannel(threadId);
      // Many clicks at once merge into one edit, which renders the vote as stored when it runs. Another process may
      // edit the same ballot with an older reading meanwhile: if the vote changed while this edit was on its way,
      // edit again, so the last edit shows the last state.
      const edit = async (): Promise<void> => {
        const vote = await load();
        if (!vote?.ballotMessageId) return;
        const messageId = vote.ballotMessageId;
        const rendered = renderBallot(vote);
        await withUnarchive(client, threadId, () => channel.messages.edit(messageId, rendered));
        const now = await load();
        if (now && renderBallot(now).content !== rendered.content)
          void queue
            .schedule(`ballot:${voteId}`, edit)
            .catch((error: unknown) => logger.warn({ err: error, threadId }, 'ballot refresh failed'));
      };
      await queue.schedule(`ballot:${voteId}`, edit);
    },

    async notice(threadId, text) {
      const channel = await sendableThread(client, threadId);
      await withUnarchive<unknown>(client, threadId, () =>
        channel.send({ content: text, allowedMentions: NO_PINGS }),
      );
    },

    async startReply(threadId, { turnId, header, replyToMessageId }) {
      const channel = await sendableThread(client, threadId);
      const queue = editQueues.forChannel(threadId);
      return startStreamingReply({
        client,
        channel,
        threadId,
        queue,
        logger,
        turnId,
        header,
        replyToMessageId,
      });
    },
  };
}
