import { ButtonStyle, type Client, type Message } from 'discord.js';
import type { Logger, ThreadPresenter } from '../core/ports.ts';
import { renderBallot } from './ballot.ts';
import { customId } from './custom-ids.ts';
import { createEditQueues, type EditQueueOptions } from './edit-queue.ts';
import { button, buttonRow, fitText, NO_PINGS } from './render.ts';
import { startStreamingReply } from './streaming-reply.ts';
import { sendableThread, withUnarchive } from './thread-access.ts';
import { alternativeLabel, noticeText } from './wording.ts';

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
 * Shows the core's events in Discord threads: replies streamed by edits (split past 2000 characters), ballots, and
 * notices worded here from the core's structured events.
 */
export function createDiscordPresenter({
  client,
  logger,
  editBudget = THREAD_EDIT_BUDGET,
  audit,
}: PresenterDeps): ThreadPresenter {
  const editQueues = createEditQueues(editBudget);

  return {
    async showBallot(threadId, vote) {
      const channel = await sendableThread(client, threadId);
      const message = await withUnarchive<Message<boolean>>(client, threadId, () =>
        channel.send(renderBallot(vote)),
      );
      return message.id;
    },

    async updateBallot(threadId, load) {
      const first = (await load())?.vote;
      if (!first?.ballotMessageId) return;
      const channel = await sendableThread(client, threadId);
      const queue = editQueues.forChannel(threadId);
      const key = `ballot:${first.id}`;
      // Many clicks at once merge into one edit, which renders the vote as stored when it runs. Another process may
      // edit the same ballot with an older reading meanwhile: if the vote changed while this edit was on its way,
      // edit again, so the last edit shows the last state.
      const edit = async (): Promise<void> => {
        const vote = (await load())?.vote;
        if (vote?.id !== first.id || !vote.ballotMessageId) return;
        const messageId = vote.ballotMessageId;
        const rendered = renderBallot(vote);
        await withUnarchive(client, threadId, () => channel.messages.edit(messageId, rendered));
        const now = (await load())?.vote;
        if (now?.id === first.id && renderBallot(now).content !== rendered.content)
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
        header: alternative
          ? alternative.blind
            ? `**${alternative.letter}**`
            : `**${alternative.letter}** · ${alternativeLabel(alternative)}`
          : undefined,
        replyToMessageId,
      });
    },
  };
}
