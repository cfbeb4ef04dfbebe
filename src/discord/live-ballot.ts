import {
  ButtonStyle,
  type Client,
  ComponentType,
  DiscordAPIError,
  type Message,
  RESTJSONErrorCodes,
  type SendableChannels,
} from 'discord.js';
import type { Vote } from '../core/model.ts';
import type { Logger, ReplyHandle, ReplyOutcome } from '../core/ports.ts';
import {
  type AlternativeView,
  alternativeHeader,
  alternativeRoom,
  alternativeText,
  renderLiveBallot,
} from './ballot.ts';
import { customId } from './custom-ids.ts';
import type { EditQueue } from './edit-queue.ts';
import { button, buttonRow } from './render.ts';
import { finalView, formatUsage } from './streaming-reply.ts';
import { withUnarchive } from './thread-access.ts';

const CURSOR = ' ▌';
/**
 * Alternatives started together get their first tokens within moments of each other: the first edit waits this long
 * after the first of them, so it shows them all, rather than one now and the rest an edit slot (1.25 s) later.
 */
const FIRST_WORDS_GATHER_MS = 150;

/** A fork shown as it happens: its alternatives and its ballot in one message, streamed by edits of that message. */
export interface LiveBallot {
  readonly voteId: string;
  /** The message now (a new one if the first was deleted while the vote was undecided). */
  readonly messageId: string;
  readonly replies: ReplyHandle[];
  /** Shows `vote` (or, when `load` is given, the vote as stored when the edit runs); resolves once it is visible. */
  show(vote: Vote | (() => Promise<Vote | undefined>)): Promise<void>;
}

/**
 * Posts the live ballot of a fork at once (every alternative's place, "…" until its first words) and returns one
 * handle per alternative. All alternatives' deltas, finishes and the vote's changes go into the same message: they
 * merge into its next edit, one queue key for the whole fork, so five alternatives cost the thread's edit budget what
 * one reply does, and each shows its first words at the first edit after its first token.
 */
export async function startLiveBallot({
  client,
  channel,
  threadId,
  queue,
  logger,
  vote: initial,
  turns,
  replyToMessageId,
}: {
  client: Client;
  channel: SendableChannels;
  threadId: string;
  queue: EditQueue;
  logger: Logger;
  vote: Vote;
  turns: readonly { letter: string; turnId: string }[];
  replyToMessageId: string | undefined;
}): Promise<LiveBallot> {
  let vote = initial;
  const room = alternativeRoom(vote);
  const views = new Map<string, AlternativeView>();
  const key = `ballot:${vote.id}`;
  const failed = (error: unknown) =>
    logger.warn({ err: error, threadId }, 'streaming the alternatives failed');

  const optionOf = (letter: string) => vote.options.find((o) => o.letter === letter)!;
  const stopRow = (turnId: string) =>
    buttonRow(button(customId({ kind: 'stop', turnId }), 'Stop', ButtonStyle.Secondary));
  for (const { letter, turnId } of turns)
    views.set(letter, {
      text: alternativeText(alternativeHeader(optionOf(letter), vote.blind), '', undefined, room),
      rows: [stopRow(turnId)],
    });

  const render = () => renderLiveBallot(vote, views);
  let shownJson = JSON.stringify(render().components);
  let message: Message<boolean> = await withUnarchive<Message<boolean>>(client, threadId, () =>
    channel.send({
      ...render(),
      ...(replyToMessageId ? { reply: { messageReference: replyToMessageId, failIfNotExists: false } } : {}),
    }),
  );

  // One edit renders everything wanted when it runs; the same edit reposts the ballot if someone deleted it while the
  // vote still needs it (alternatives and buttons included, as they were), and skips when nothing changed.
  let load: (() => Promise<Vote | undefined>) | undefined;
  const run = async (): Promise<void | 'skipped'> => {
    if (load) {
      const stored = await load();
      load = undefined;
      if (stored?.id === vote.id) vote = stored;
    }
    const payload = render();
    const json = JSON.stringify(payload.components);
    if (json === shownJson) return 'skipped';
    try {
      // Through the channel: the message's own edit needs the channel in this process's cache (see presenter.ts).
      await withUnarchive(client, threadId, () => channel.messages.edit(message.id, payload));
    } catch (error) {
      const undecided = vote.status === 'generating' || vote.status === 'open';
      if (
        !(error instanceof DiscordAPIError && error.code === RESTJSONErrorCodes.UnknownMessage) ||
        !undecided
      )
        throw error;
      logger.warn({ err: error, threadId, voteId: vote.id }, 'the ballot was deleted; posting it again');
      message = await withUnarchive<Message<boolean>>(client, threadId, () => channel.send(payload));
    }
    shownJson = json;
    return undefined;
  };

  // Changes made in one turn of the event loop (several alternatives' deltas, the last words and the opened vote)
  // are one edit: the queue is asked once they are all in.
  let tick: Promise<void> | undefined;
  const schedule = (gatherMs = 0): Promise<void> => {
    tick ??= new Promise<void>((resolve) =>
      gatherMs > 0 ? setTimeout(resolve, gatherMs) : setImmediate(resolve),
    ).then(() => {
      tick = undefined;
      return queue.schedule(key, run);
    });
    return tick;
  };

  const wordless = new Set(turns.map((t) => t.letter));
  const replies: ReplyHandle[] = turns.map(({ letter }) => {
    let finished = false;
    const header = () => alternativeHeader(optionOf(letter), vote.blind);
    return {
      update(text) {
        if (finished) return;
        views.set(letter, {
          text: alternativeText(header(), `${text}${CURSOR}`, undefined, room),
          rows: views.get(letter)?.rows ?? [],
        });
        const firstWords = wordless.delete(letter) && wordless.size > 0;
        schedule(firstWords ? FIRST_WORDS_GATHER_MS : 0).catch(failed);
      },
      async finish(outcome: ReplyOutcome) {
        finished = true;
        wordless.delete(letter);
        const view = finalView(outcome, threadId);
        const usage =
          outcome.kind === 'done' && outcome.usage ? `-# ${formatUsage(outcome.usage)}` : undefined;
        views.set(letter, {
          text: alternativeText(header(), view.body, view.footer ?? usage, room),
          rows: view.rows,
        });
        await schedule();
      },
    };
  });

  return {
    voteId: vote.id,
    get messageId() {
      return message.id;
    },
    replies,
    show(next) {
      if (typeof next === 'function') load = next;
      else if (next.id === vote.id) vote = next;
      return schedule();
    },
  };
}

/**
 * What each alternative of a ballot message shows, read back from the message (its containers, in the vote's order):
 * a ballot updated by a process that did not stream it keeps the alternatives' texts as people saw them.
 */
export function viewsFromMessage(vote: Vote, message: Message<boolean>): Map<string, AlternativeView> {
  const views = new Map<string, AlternativeView>();
  const containers = message.components
    .map((component) => component.toJSON())
    .filter((json) => json.type === ComponentType.Container) as {
    components: { type: number; content?: string }[];
  }[];
  for (const [index, option] of vote.options.entries()) {
    const text = containers[index]?.components.find((c) => c.type === ComponentType.TextDisplay)?.content;
    // A text left streaming by a process that is gone loses its cursor: nothing more is coming.
    if (text !== undefined) views.set(option.letter, { text: text.replace(CURSOR, ''), rows: [] });
  }
  return views;
}
