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
      // Many clicks at once merge into one edit, which renders the vote as stored when it runs.
      await editQueues.forChannel(threadId).schedule(`ballot:${voteId}`, async () => {
        const vote = await load();
        if (!vote?.ballotMessageId) return;
        const messageId = vote.ballotMessageId;
        await withUnarchive(client, threadId, () => channel.messages.edit(messageId, renderBallot(vote)));
      });
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
