import { ButtonStyle, type Client, type Message, MessageFlags } from 'discord.js';
import type { Logger, ThreadPresenter } from '../core/ports.ts';
import { alternativeHeader, ballotText, renderLiveBallot } from './ballot.ts';
import { customId } from './custom-ids.ts';
import { createEditQueues, type EditQueueOptions } from './edit-queue.ts';
import { type LiveBallot, startLiveBallot, viewsFromMessage } from './live-ballot.ts';
import { button, buttonRow, fitText, NO_PINGS } from './render.ts';
import { startStreamingReply } from './streaming-reply.ts';
import { sendableThread, withUnarchive } from './thread-access.ts';
import { noticeText } from './wording.ts';

/** Discord allows about 5 edits per 5 s in a channel; keep one in reserve for ballots and notices. */
export const THREAD_EDIT_BUDGET: EditQueueOptions = { limit: 4, windowMs: 5000, spacingMs: 1250 };

export interface PresenterDeps {
  client: Client;
  logger: Logger;
  editBudget?: EditQueueOptions;
  /** Where moderator actions are copied besides the thread (an audit channel). */
  audit?(
    action: Extract<Parameters<ThreadPresenter['notice']>[1], { kind: 'branch_action' }>['action'],
  ): Promise<void>;
}

/**
 * Shows the core's events in Discord threads: replies streamed by edits (split past 2000 characters), forks as live
 * ballots (the alternatives streaming side by side in the ballot's one message), and notices worded here from the
 * core's structured events.
 */
export function createDiscordPresenter({
  client,
  logger,
  editBudget = THREAD_EDIT_BUDGET,
  audit,
}: PresenterDeps): ThreadPresenter {
  const editQueues = createEditQueues(editBudget);
  // The forks this process shows, by vote id, until their vote is decided and applied (or cancelled).
  const lives = new Map<string, LiveBallot>();

  return {
    async startAlternatives(threadId, { vote, turns, replyToMessageId }) {
      const channel = await sendableThread(client, threadId);
      const live = await startLiveBallot({
        client,
        channel,
        threadId,
        queue: editQueues.forChannel(threadId),
        logger,
        vote,
        turns,
        replyToMessageId,
      });
      lives.set(vote.id, live);
      return { ballotMessageId: live.messageId, replies: live.replies };
    },

    async showBallot(threadId, vote) {
      const live = lives.get(vote.id);
      if (live) {
        await live.show(vote);
        return live.messageId;
      }
      // Nobody here streamed this fork (the bot restarted, or another process made it): a ballot of its own, whose
      // alternatives are read with "Read B in full".
      const channel = await sendableThread(client, threadId);
      const message = await withUnarchive<Message<boolean>>(client, threadId, () =>
        channel.send(renderLiveBallot(vote, new Map())),
      );
      return message.id;
    },

    async updateBallot(threadId, load) {
      const first = (await load())?.vote;
      if (!first?.ballotMessageId) return;
      const live = lives.get(first.id);
      if (live) {
        await live.show(async () => (await load())?.vote);
        // A decided vote changes no more (but for its applied mark, which shows nothing new).
        if (first.status === 'applied' || first.status === 'cancelled') lives.delete(first.id);
        return;
      }
      const channel = await sendableThread(client, threadId);
      const queue = editQueues.forChannel(threadId);
      const key = `ballot:${first.id}`;
      // Many clicks at once merge into one edit, which renders the vote as stored when it runs. Another process may
      // edit the same ballot with an older reading meanwhile: if the vote changed while this edit was on its way,
      // edit again, so the last edit shows the last state. The alternatives' texts are kept as the message shows them.
      const edit = async (): Promise<void> => {
        const vote = (await load())?.vote;
        if (vote?.id !== first.id || !vote.ballotMessageId) return;
        const message = await channel.messages.fetch(vote.ballotMessageId);
        const rendered = renderLiveBallot(vote, viewsFromMessage(vote, message));
        // A ballot posted before live ballots existed has content, which a components v2 message may not have.
        const legacy = !message.flags.has(MessageFlags.IsComponentsV2);
        // Through the channel, not the message: a process that does not run the guild's shard (the thread's worker
        // moved to another machine) has no cached channel for the message to find.
        await withUnarchive(client, threadId, () =>
          channel.messages.edit(message.id, legacy ? { ...rendered, content: null, embeds: [] } : rendered),
        );
        const now = (await load())?.vote;
        if (now?.id === first.id && ballotText(now) !== ballotText(vote))
          void queue
            .schedule(key, edit)
            .catch((error: unknown) => logger.warn({ err: error, threadId }, 'ballot refresh failed'));
      };
      await queue.schedule(key, edit);
    },

    async notice(threadId, notice) {
      const channel = await sendableThread(client, threadId);
      // A notice about one message answers it, and a budget's has the Retry button a failed reply would have.
      const about =
        notice.kind === 'over_budget' || notice.kind === 'message_refused'
          ? {
              reply: { messageReference: notice.messageId, failIfNotExists: false },
              components:
                notice.kind === 'over_budget' && notice.retry
                  ? [
                      buttonRow(
                        button(
                          customId({ kind: 'retry', threadId, messageId: notice.messageId }),
                          'Retry',
                          ButtonStyle.Secondary,
                        ),
                      ),
                    ]
                  : [],
            }
          : {};
      await withUnarchive<unknown>(client, threadId, () =>
        channel.send({ content: fitText(noticeText(notice)), allowedMentions: NO_PINGS, ...about }),
      );
      if (notice.kind === 'branch_action' && audit)
        await audit(notice.action).catch((error: unknown) =>
          logger.warn({ err: error, threadId }, 'audit record failed'),
        );
    },

    async startReply(threadId, { turnId, alternative, replyToMessageId }) {
      const channel = await sendableThread(client, threadId);
      const queue = editQueues.forChannel(threadId);
      return startStreamingReply({
        client,
        channel,
        threadId,
        queue,
        logger,
        turnId,
        header: alternative ? alternativeHeader(alternative, alternative.blind) : undefined,
        replyToMessageId,
      });
    },
  };
}
