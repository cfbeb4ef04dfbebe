import { ButtonStyle, type Client, type Message, type SendableChannels } from 'discord.js';
import type { Logger, ReplyHandle, ReplyOutcome, Usage } from '../core/ports.ts';
import { customId } from './custom-ids.ts';
import type { EditQueue } from './edit-queue.ts';
import { button, buttonRow, DISCORD_MESSAGE_LIMIT, NO_PINGS } from './render.ts';
import { createSplitter } from './split-message.ts';
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
interface Wanted {
  content: string;
  rows: Row[];
}

export function formatUsage(usage: Usage): string {
  return `${usage.inputTokens} in · ${usage.outputTokens} out tokens`;
}

/** A text this long may need a second message (a closing fence takes at most a sixth of the limit). */
const MAY_NEED_TWO = DISCORD_MESSAGE_LIMIT - Math.floor(DISCORD_MESSAGE_LIMIT / 6);

/**
 * One reply streaming into a thread: typing until the first text, then messages that follow the text. New messages
 * are posted at once and in order; edits go through the thread's edit queue, one message per queue key, so pending
 * text merges and every edit request counts against the thread's budget. The buttons (Stop, Retry) live on the first
 * message, which is finalised last: a reply never looks finished while its rest is still arriving.
 *
 * An update only keeps the text: it is split into messages when a post or an edit runs (at most one edit per 1.25 s),
 * never per update, and a split reuses the messages the previous one settled, so a reply streamed in many small
 * deltas costs time in proportion to its length. Whether the reply has outgrown its last message is told from
 * lengths alone, against the room that message had at the last split; a new message is posted then, or at the next
 * edit if a code block opened meanwhile took that room.
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
  let finished = false;
  let firstPostTimer: ReturnType<typeof setTimeout> | undefined;
  const stopRow = buttonRow(button(customId({ kind: 'stop', turnId }), 'Stop', ButtonStyle.Secondary));
  const failed = (error: unknown) => logger.warn({ err: error, threadId }, 'streaming the reply failed');

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

  // The reply as it should look, and its version; `current()` splits it into messages when asked, once per version.
  let reply: { body: string; footer: string | undefined; rows: Row[] } = {
    body: '',
    footer: undefined,
    rows: [],
  };
  let version = 0;
  // The text changes mostly at its end: the splitter reuses the messages an earlier version settled.
  const splitter = createSplitter(DISCORD_MESSAGE_LIMIT);
  let split: { body: string; footer: string | undefined; chunks: string[] } | undefined;
  let wanted: Wanted[] = [];
  let wantedVersion = -1;
  // At the last split: the body's length, and how many characters its last message could still take.
  let splitBodyLength = 0;
  let room = 0;
  // The text of the last update, as the core built it (by appending deltas).
  let streamed = '';

  const want = (body: string, footer: string | undefined, rows: Row[]) => {
    reply = { body, footer, rows };
    version += 1;
  };

  const current = (): Wanted[] => {
    if (wantedVersion === version) return wanted;
    // V8 keeps a string built by appending as a chain of its pieces, which every reading of it walks and copies again;
    // reading one character stores it flat, in place, so later versions append to one piece and stay cheap to read.
    streamed.charCodeAt(0);
    const { body, footer, rows } = reply;
    if (split?.body !== body || split.footer !== footer) {
      const chunks = splitter.split([header, body, footer].filter(Boolean).join('\n'));
      split = { body, footer, chunks };
      splitBodyLength = body.length;
      room = DISCORD_MESSAGE_LIMIT - (chunks.at(-1)?.length ?? 0);
    }
    wanted = (split.chunks.length > 0 ? split.chunks : ['…']).map((content, index) => ({
      content,
      rows: index === 0 ? rows : [],
    }));
    wantedVersion = version;
    return wanted;
  };

  // Posts run one after another; a post asked for while another waits to start is that post (it renders the
  // latest text when it starts).
  let posting: Promise<void> = Promise.resolve();
  let nextPost: Promise<void> | undefined;
  const postNew = (): Promise<void> => {
    if (nextPost) return nextPost;
    const post = posting
      .catch(() => {})
      .then(async () => {
        nextPost = undefined;
        for (let index = shown.length; index < current().length; index += 1) {
          const { content, rows } = current()[index]!;
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
    nextPost = post;
    posting = post;
    return post;
  };

  const isStale = (index: number) => {
    const now = shown[index];
    const target = current()[index];
    return !!now && !!target && (now.content !== target.content || now.buttons !== target.rows.length > 0);
  };

  const staleIndexes = () => [...shown.keys()].filter(isStale);

  // Edits not yet started, by message: asking again for one of them is that edit (it renders what is wanted when it
  // runs), so a burst of updates costs one edit and one queue entry.
  const pendingEdits = new Map<number, Promise<void>>();
  const editLater = (index: number): Promise<void> => {
    const pending = pendingEdits.get(index);
    if (pending) return pending;
    let started = false;
    const edit = queue.schedule(`${turnId}:${index}`, async () => {
      started = true;
      pendingEdits.delete(index);
      // Updates only schedule the last message's edit: the reply may have outgrown it, or moved an earlier cut.
      if (
        current().length > shown.length ||
        shown.some((_, i) => i !== index && isStale(i) && !pendingEdits.has(i))
      )
        void flush();
      if (!isStale(index)) return 'skipped';
      const now = shown[index]!;
      const { content, rows } = current()[index]!;
      await withUnarchive<Message<boolean>>(client, threadId, () =>
        now.message.edit({ content, components: rows, allowedMentions: NO_PINGS }),
      );
      now.content = content;
      now.buttons = rows.length > 0;
      return undefined;
    });
    // The queue may start the run at once, before this line.
    if (!started) pendingEdits.set(index, edit);
    return edit;
  };

  // Posts what the reply has outgrown, then schedules the edit of every message that no longer shows what is wanted.
  // Asked for again before its posts are done, it is the same flush.
  let queuedFlush: Promise<void> | undefined;
  const flush = (): Promise<void> => {
    queuedFlush ??= postNew()
      .finally(() => {
        queuedFlush = undefined;
      })
      .then(() => Promise.all(staleIndexes().map(editLater)))
      .then(() => undefined, failed);
    return queuedFlush;
  };

  return {
    update(text) {
      if (finished) return;
      stopTyping();
      streamed = text;
      want(`${text}${CURSOR}`, undefined, [stopRow]);
      if (queuedFlush) return;
      if (shown.length > 0) {
        const last = shown.length - 1;
        if (reply.body.length - splitBodyLength > room) void flush();
        else if (!pendingEdits.has(last)) editLater(last).catch(failed);
      } else if ((header?.length ?? -1) + 1 + reply.body.length > MAY_NEED_TWO && current().length > 1) {
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
      for (const extra of shown.splice(current().length)) await extra.message.delete();
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

export function finalView(
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
