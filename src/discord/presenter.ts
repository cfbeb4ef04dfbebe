import {
  ButtonStyle,
  type Client,
  DiscordAPIError,
  type Message,
  RESTJSONErrorCodes,
  type SendableChannels,
} from 'discord.js';
import type { BallotPresenter } from '../core/alternatives.ts';
import type { Logger, ReplyHandle, ReplyOutcome, ThreadPresenter, Usage } from '../core/ports.ts';
import { renderBallot } from './ballot.ts';
import { createEditQueues, type EditQueueOptions } from './edit-queue.ts';
import { button, buttonRow, customIds, DISCORD_MESSAGE_LIMIT, NO_PINGS } from './render.ts';
import { splitMessage } from './split-message.ts';

/** Discord allows about 5 edits per 5 s in a channel; keep one in reserve for ballots and notices. */
export const THREAD_EDIT_BUDGET: EditQueueOptions = { limit: 4, windowMs: 5000 };
/** Discord's typing indicator lasts about 10 s. */
const TYPING_REFRESH_MS = 8000;
const CURSOR = ' ▌';

export interface PresenterDeps {
  client: Client;
  logger: Logger;
  editBudget?: EditQueueOptions;
}

export function formatUsage(usage: Usage): string {
  return `${usage.inputTokens} in · ${usage.outputTokens} out tokens`;
}

/** Resolves a thread as a channel the bot can post in, reopening it when it was archived (posting would fail). */
export async function sendableThread(client: Client, threadId: string): Promise<SendableChannels> {
  const channel = await client.channels.fetch(threadId);
  if (!channel?.isSendable()) throw new Error(`channel ${threadId} cannot receive messages`);
  return channel;
}

/** Runs a Discord write; when the thread was archived meanwhile, reopens it once and tries again. */
export async function withUnarchive<T>(
  client: Client,
  threadId: string,
  write: () => Promise<T>,
): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (
      !(error instanceof DiscordAPIError) ||
      error.code !== RESTJSONErrorCodes.InvalidActionOnArchivedThread
    )
      throw error;
    const channel = await client.channels.fetch(threadId);
    if (!channel?.isThread() || channel.locked) throw error;
    await channel.setArchived(false, 'threadfork: answering a message');
    return write();
  }
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

    async startReply(threadId, { turnId, header, replyToMessageId }): Promise<ReplyHandle> {
      const channel = await sendableThread(client, threadId);
      const queue = editQueues.forChannel(threadId);
      const posted: { message: Message<boolean>; content: string; buttons: boolean }[] = [];
      let text = '';
      let finished = false;

      let typing: ReturnType<typeof setInterval> | undefined;
      const sendTyping = () =>
        channel
          .sendTyping()
          .catch((error: unknown) => logger.debug({ err: error, threadId }, 'typing failed'));
      await sendTyping();
      typing = setInterval(sendTyping, TYPING_REFRESH_MS);
      const stopTyping = () => {
        if (typing) clearInterval(typing);
        typing = undefined;
      };

      const render = (body: string, footer: string | undefined) => {
        const full = [header, body || (finished ? '' : '…'), footer].filter(Boolean).join('\n');
        return splitMessage(full, DISCORD_MESSAGE_LIMIT);
      };

      // Brings Discord in line with `chunks`: edits what changed, posts what is new; buttons on the last message.
      const sync = async (chunks: string[], components: ReturnType<typeof buttonRow>[]) => {
        for (const [index, content] of chunks.entries()) {
          const rows = index === chunks.length - 1 ? components : [];
          const existing = posted[index];
          if (!existing) {
            const message = await withUnarchive<Message<boolean>>(client, threadId, () =>
              channel.send({
                content,
                components: rows,
                allowedMentions: NO_PINGS,
                ...(index === 0 && replyToMessageId
                  ? { reply: { messageReference: replyToMessageId, failIfNotExists: false } }
                  : {}),
              }),
            );
            posted.push({ message, content, buttons: rows.length > 0 });
          } else if (existing.content !== content || existing.buttons !== rows.length > 0) {
            await withUnarchive<Message<boolean>>(client, threadId, () =>
              existing.message.edit({ content, components: rows, allowedMentions: NO_PINGS }),
            );
            existing.content = content;
            existing.buttons = rows.length > 0;
          }
        }
        // The final text can be shorter than the streamed one (a think block closed late): drop what is left over.
        for (const extra of posted.splice(chunks.length)) await extra.message.delete();
      };

      const stopRow = buttonRow(button(customIds.stop(turnId), 'Stop', ButtonStyle.Secondary));
      const flushStreaming = () => sync(render(`${text}${CURSOR}`, undefined), [stopRow]);

      return {
        update(next) {
          if (finished || next === text) return;
          text = next;
          stopTyping();
          queue.schedule(turnId, flushStreaming).catch((error: unknown) => {
            logger.warn({ err: error, threadId }, 'streaming edit failed');
          });
        },
        async finish(outcome: ReplyOutcome) {
          finished = true;
          stopTyping();
          const view = finalView(outcome, threadId);
          const usage =
            header && outcome.kind === 'done' && outcome.usage
              ? `-# ${formatUsage(outcome.usage)}`
              : undefined;
          const { body, rows } = view;
          const footer = view.footer ?? usage;
          await queue.schedule(turnId, () => sync(render(body, footer), rows));
        },
      };
    },
  };
}

function finalView(outcome: ReplyOutcome, threadId: string) {
  switch (outcome.kind) {
    case 'done':
      return outcome.refused
        ? { body: `🚫 The model declined to answer: ${outcome.text}`, footer: undefined, rows: [] }
        : { body: outcome.text, footer: undefined, rows: [] };
    case 'stopped':
      return { body: outcome.text, footer: '*⏹ stopped*', rows: [] };
    case 'failed':
      return {
        body: outcome.text,
        footer: `⚠️ ${outcome.error.userMessage}`,
        rows: outcome.retryMessageId
          ? [
              buttonRow(
                button(customIds.retry(threadId, outcome.retryMessageId), 'Retry', ButtonStyle.Primary),
              ),
            ]
          : [],
      };
  }
}
