import { ButtonStyle, type Client, type Message, type SendableChannels } from 'discord.js';
import type { Logger, ReplyHandle, ReplyOutcome, Usage } from '../core/ports.ts';
import { customId } from './custom-ids.ts';
import type { EditQueue } from './edit-queue.ts';
import { button, buttonRow, DISCORD_MESSAGE_LIMIT, NO_PINGS } from './render.ts';
import { splitMessage } from './split-message.ts';
import { withUnarchive } from './thread-access.ts';

/** Discord's typing indicator lasts about 10 s. */
const TYPING_REFRESH_MS = 8000;
const CURSOR = ' ▌';
/**
 * The first text waits this long before it is posted, so a reply that is done by then is posted whole and costs no
 * edit at all (most replies of a fast model); longer ones show up after this short pause.
 */
const FIRST_POST_DELAY_MS = 350;

type Row = ReturnType<typeof buttonRow>;
interface Shown {
  message: Message<boolean>;
  content: string;
  buttons: boolean;
}

export function formatUsage(usage: Usage): string {
  return `${usage.inputTokens} in · ${usage.outputTokens} out tokens`;
}

/**
 * One reply streaming into a thread: typing until the first text, then messages that follow the text. New messages
 * are posted at once and in order; edits go through the thread's edit queue, one message per queue key, so pending
 * text merges and every edit request counts against the thread's budget. The buttons (Stop, Retry) live on the first
 * message, which is finalised last: a reply never looks finished while its rest is still arriving.
 */
export async function startStreamingReply({
  client,
  channel,
  threadId,
  queue,
  logger,
  turnId,
  header,
  replyToMessageId,
}: {
  client: Client;
  channel: SendableChannels;
  threadId: string;
  queue: EditQueue;
  logger: Logger;
  turnId: string;
  header: string | undefined;
  replyToMessageId: string | undefined;
}): Promise<ReplyHandle> {
  const shown: Shown[] = [];
  let wanted: { content: string; rows: Row[] }[] = [];
  let creating: Promise<void> = Promise.resolve();
  let finished = false;
  let firstPostTimer: ReturnType<typeof setTimeout> | undefined;
  const stopRow = buttonRow(button(customId({ kind: 'stop', turnId }), 'Stop', ButtonStyle.Secondary));

  const sendTyping = () =>
    channel.sendTyping().catch((error: unknown) => logger.debug({ err: error, threadId }, 'typing failed'));
  // A reply whose first words come within the first-post delay needs no typing indicator (and saves a request).
  let typing: ReturnType<typeof setInterval> | undefined;
  const typingStart = setTimeout(() => {
    void sendTyping();
    typing = setInterval(sendTyping, TYPING_REFRESH_MS);
  }, FIRST_POST_DELAY_MS);
  const stopTyping = () => {
    clearTimeout(typingStart);
    clearInterval(typing);
  };

  const want = (body: string, footer: string | undefined, rows: Row[]) => {
    const chunks = splitMessage([header, body, footer].filter(Boolean).join('\n'), DISCORD_MESSAGE_LIMIT);
    wanted = (chunks.length > 0 ? chunks : ['…']).map((content, index) => ({
      content,
      rows: index === 0 ? rows : [],
    }));
  };

  const postNew = (): Promise<void> => {
    creating = creating
      .catch(() => {})
      .then(async () => {
        for (let index = shown.length; index < wanted.length; index += 1) {
          const { content, rows } = wanted[index]!;
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
          shown[index] = { message, content, buttons: rows.length > 0 };
        }
      });
    return creating;
  };

  const isStale = (index: number) => {
    const now = shown[index];
    const target = wanted[index];
    return !!now && !!target && (now.content !== target.content || now.buttons !== target.rows.length > 0);
  };

  // The edit renders what is wanted when it runs, so a burst of updates costs one edit.
  const editLater = (index: number): Promise<void> =>
    queue.schedule(`${turnId}:${index}`, async () => {
      if (!isStale(index)) return 'skipped';
      const now = shown[index]!;
      const { content, rows } = wanted[index]!;
      await withUnarchive<Message<boolean>>(client, threadId, () =>
        now.message.edit({ content, components: rows, allowedMentions: NO_PINGS }),
      );
      now.content = content;
      now.buttons = rows.length > 0;
      return undefined;
    });

  const staleIndexes = () => [...shown.keys()].filter(isStale);

  return {
    update(text) {
      if (finished) return;
      stopTyping();
      want(`${text}${CURSOR}`, undefined, [stopRow]);
      const flush = () =>
        postNew()
          .then(() => Promise.all(staleIndexes().map(editLater)))
          .catch((error: unknown) => logger.warn({ err: error, threadId }, 'streaming the reply failed'));
      if (shown.length > 0 || wanted.length > 1) {
        void flush();
      } else if (!firstPostTimer) {
        firstPostTimer = setTimeout(() => {
          if (!finished) void flush();
        }, FIRST_POST_DELAY_MS);
      }
    },

    async finish(outcome: ReplyOutcome) {
      finished = true;
      stopTyping();
      clearTimeout(firstPostTimer);
      const view = finalView(outcome, threadId);
      const usage =
        header && outcome.kind === 'done' && outcome.usage ? `-# ${formatUsage(outcome.usage)}` : undefined;
      const footer = view.footer ?? usage;
      // Until the rest of the reply is in place, the first message keeps its Stop button (an edit still queued from
      // streaming renders what is wanted when it runs); a reply never shown at all is posted whole.
      const firstPost = shown.length === 0;
      want(view.body, footer, firstPost ? view.rows : [stopRow]);
      await postNew();
      for (const extra of shown.splice(wanted.length)) await extra.message.delete();
      await Promise.all(
        staleIndexes()
          .filter((index) => index !== 0)
          .map(editLater),
      );
      want(view.body, footer, view.rows);
      if (isStale(0)) await editLater(0);
    },
  };
}

function finalView(
  outcome: ReplyOutcome,
  threadId: string,
): { body: string; footer: string | undefined; rows: Row[] } {
  switch (outcome.kind) {
    case 'done':
      return outcome.refused
        ? { body: `🚫 The model declined to answer: ${outcome.text}`, footer: undefined, rows: [] }
        : { body: outcome.text, footer: undefined, rows: [] };
    case 'stopped':
      return {
        body: outcome.text,
        footer: outcome.by === 'shutdown' ? '*⏹ stopped: the bot restarted*' : '*⏹ stopped*',
        rows: [],
      };
    case 'failed':
      return {
        body: outcome.text,
        footer: `⚠️ ${outcome.error.userMessage}`,
        rows: outcome.retryMessageId
          ? [
              buttonRow(
                button(
                  customId({ kind: 'retry', threadId, messageId: outcome.retryMessageId }),
                  'Retry',
                  ButtonStyle.Primary,
                ),
              ),
            ]
          : [],
      };
  }
}
