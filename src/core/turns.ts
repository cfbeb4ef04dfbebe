import { randomUUID } from 'node:crypto';
import { BotError, LockLostError, NotFoundError, UpstreamError } from './errors.ts';
import {
  type Branch,
  type Item,
  type PendingMessage,
  SCHEMA_VERSION,
  type ThreadSession,
  type ThreadSettings,
} from './model.ts';
import type {
  Clock,
  Lease,
  LockService,
  Logger,
  ModelBackend,
  ReplyHandle,
  ReplyOutcome,
  ThreadPresenter,
  Usage,
} from './ports.ts';
import type { RunningTurns } from './running-turns.ts';
import type { SessionRepository } from './sessions.ts';
import { stripThink } from './strip-think.ts';
import { noTelemetry, type Telemetry } from './telemetry.ts';

/** A process that died during a turn is tried again this many times before the message is marked failed. */
const MAX_ATTEMPTS = 3;
/** Failed messages kept for the Retry button. */
const MAX_FAILED = 20;

export interface TurnServiceDeps {
  sessions: SessionRepository;
  backend: ModelBackend;
  locks: LockService;
  presenter: ThreadPresenter;
  running: RunningTurns;
  clock: Clock;
  logger: Logger;
  defaults: ThreadSettings;
  /** Called when a thread's inbox should get alternatives instead of one reply (the auto-alternatives setting). */
  onAutoAlternatives?: (session: ThreadSession, batch: PendingMessage[]) => Promise<void>;
  /** Where turns, tokens, errors and queue depths are reported (default: nowhere). */
  telemetry?: Telemetry;
}

export interface IncomingMessage {
  threadId: string;
  messageId: string;
  authorId: string;
  authorName: string;
  text: string;
}

/** Turns: every message in a managed thread is answered, in order, one turn at a time per thread. */
export interface TurnService {
  startThread(thread: {
    threadId: string;
    guildId: string | undefined;
    userId: string;
    instructions?: string | undefined;
  }): Promise<ThreadSession>;
  /** Queues a message; resolves once it is stored (not answered). 'ignored' for threads the bot does not manage. */
  receive(message: IncomingMessage): Promise<'queued' | 'ignored'>;
  /** Queues a failed message again. */
  retry(threadId: string, messageId: string): Promise<void>;
  /** Starts answering the inbox of a thread (after a vote closed, or at start-up). */
  kick(threadId: string): void;
  /** Answers whatever was waiting when the process stopped. */
  resume(): Promise<void>;
  /** Resolves when no turn runs or waits in this process (tests and shutdown). */
  idle(): Promise<void>;
}

export function createTurnService(deps: TurnServiceDeps): TurnService {
  const { sessions, backend, locks, presenter, running, clock, logger } = deps;
  const telemetry = deps.telemetry ?? noTelemetry;
  const draining = new Map<string, Promise<void>>();
  const again = new Set<string>();

  function kick(threadId: string): void {
    if (draining.has(threadId)) {
      again.add(threadId);
      return;
    }
    const done = drain(threadId)
      .catch((error: unknown) => logger.error({ err: error, threadId }, 'answering the thread failed'))
      .finally(() => {
        draining.delete(threadId);
        if (again.delete(threadId)) kick(threadId);
      });
    draining.set(threadId, done);
  }

  async function drain(threadId: string): Promise<void> {
    await locks.withLock(`thread:${threadId}`, async (lease) => {
      for (;;) {
        const session = await sessions.get(threadId);
        telemetry.queueDepth({ threadId, waiting: session?.inbox.length ?? 0 });
        if (!session || session.openVoteId || session.inbox.length === 0) {
          if (session && session.inbox.length === 0) await sessions.setHasWork(threadId, false);
          return;
        }
        const batch = session.settings.gatherMessages ? session.inbox : session.inbox.slice(0, 1);
        if (
          session.settings.autoAlternatives >= 2 &&
          session.settings.alternativesEnabled &&
          deps.onAutoAlternatives
        ) {
          await deps.onAutoAlternatives(session, batch);
          continue;
        }
        await answer(session, batch, lease);
      }
    });
  }

  async function answer(before: ThreadSession, batch: PendingMessage[], lease: Lease): Promise<void> {
    const threadId = before.threadId;
    // Telemetry: the turn's timings, reported once however it ends (a failure before anything that may throw).
    const startedAt = clock.now();
    let firstTokenAt: number | undefined;
    const reportTurn = (outcome: 'done' | 'stopped' | 'failed', errorKind?: string) => {
      telemetry.turn({
        backend: backend.kind,
        model: before.settings.model,
        outcome,
        queueWaitMs: startedAt - Math.min(...batch.map((m) => m.receivedAt)),
        firstTokenMs: firstTokenAt === undefined ? undefined : firstTokenAt - startedAt,
        totalMs: clock.now() - startedAt,
      });
      if (errorKind) telemetry.error({ kind: errorKind });
    };
    const ids = new Set(batch.map((m) => m.messageId));
    const session = await sessions.update(threadId, (s) => ({
      ...s,
      inbox: s.inbox.map((m) => (ids.has(m.messageId) ? { ...m, attempts: m.attempts + 1 } : m)),
    }));
    const branch = session.branches[session.activeBranchId]!;
    const history = await sessions.history(session, branch.id);
    // A crash between saving the reply and clearing the inbox must not answer the same message twice.
    if (history.some((item) => item.sourceMessageIds?.some((id) => ids.has(id)))) {
      await removeFromInbox(threadId, ids);
      return;
    }
    const last = batch.at(-1)!;
    if (batch.some((m) => m.attempts + 1 > MAX_ATTEMPTS)) {
      const error = new BotError(
        'interrupted',
        'The bot stopped several times while answering this message.',
      );
      await failBatch(threadId, batch, error);
      reportTurn('failed', error.code);
      await presenter
        .startReply(threadId, { turnId: randomUUID(), header: undefined, replyToMessageId: last.messageId })
        .then((handle) =>
          show(threadId, handle, { kind: 'failed', text: '', error, retryMessageId: last.messageId }),
        )
        .catch((cause: unknown) =>
          logger.error({ err: cause, threadId }, 'cannot show the failure in the thread'),
        );
      return;
    }

    const userItem: Item = {
      id: randomUUID(),
      role: 'user',
      text: batch.map((m) => m.text).join('\n\n'),
      sourceMessageIds: [...ids],
    };
    const turnId = randomUUID();
    // A Stop click, or the loss of the thread's lock (another process takes the turn over), ends the generation.
    const signal = AbortSignal.any([
      running.start(
        turnId,
        batch.map((m) => m.authorId),
      ),
      lease.signal,
    ]);
    let handle: ReplyHandle;
    try {
      handle = await presenter.startReply(threadId, {
        turnId,
        header: undefined,
        replyToMessageId: last.messageId,
      });
    } catch (error) {
      running.end(turnId);
      // The thread cannot show a reply (archived, locked, no permission): keep the message for a retry.
      logger.error({ err: error, threadId }, 'cannot post the reply in the thread');
      reportTurn('failed', 'reply_not_shown');
      await failBatch(threadId, batch, error);
      return;
    }
    let raw = '';
    let result: Awaited<ReturnType<ModelBackend['runTurn']>>;
    try {
      result = await backend.runTurn({
        provider: branch.provider,
        history,
        input: [userItem],
        options: generationOptions(session.settings),
        signal,
        onDelta(delta) {
          firstTokenAt ??= clock.now();
          raw += delta;
          handle.update(stripThink(raw));
        },
        resumed: batch.some((m) => m.attempts > 0),
      });
    } catch (error) {
      const shown =
        error instanceof BotError
          ? error
          : new UpstreamError('unavailable', 'Something went wrong while answering.', {
              retryable: true,
              cause: error,
            });
      logger.warn({ err: error, threadId, branchId: branch.id, code: shown.code }, 'turn failed');
      reportTurn('failed', shown.code);
      await failBatch(threadId, batch, error);
      await show(threadId, handle, {
        kind: 'failed',
        text: stripThink(raw),
        error: shown,
        retryMessageId: last.messageId,
      });
      return;
    } finally {
      running.end(turnId);
    }
    reportTokens(telemetry, session.settings.model, result.usage);
    const text = stripThink(result.text);
    if (lease.signal.aborted) {
      logger.warn(
        { threadId, fencingToken: lease.fencingToken },
        'lost the thread lock during a turn; leaving it to its new holder',
      );
      reportTurn('failed', 'lock_lost');
      await show(threadId, handle, {
        kind: 'failed',
        text,
        error: new LockLostError(),
        retryMessageId: undefined,
      });
      return;
    }
    const reply: Item = {
      id: randomUUID(),
      role: 'assistant',
      text,
      ...(result.responseId ? { responseId: result.responseId } : {}),
      ...(result.stopped ? { stopped: true } : {}),
    };
    try {
      // The fencing token orders writers: a process whose lock expired (and was taken) cannot write a late result.
      await sessions.update(threadId, (s) => {
        if ((s.lockFence ?? 0) > lease.fencingToken) throw new LockLostError();
        return { ...s, lockFence: lease.fencingToken };
      });
      await sessions.appendItems(threadId, branch.id, [userItem, reply]);
      await sessions.update(threadId, (s) => ({
        ...s,
        inbox: s.inbox.filter((m) => !ids.has(m.messageId)),
        branches: {
          ...s.branches,
          [branch.id]: {
            ...s.branches[branch.id]!,
            provider: result.provider,
            ownItems: s.branches[branch.id]!.ownItems + 2,
          },
        },
      }));
    } catch (error) {
      // The store went away after the model answered (Redis down): the reply says so instead of looking like it
      // is still coming. The message stays in the inbox and is answered again once the store is back.
      const shown =
        error instanceof BotError ? error : new BotError('store', 'The reply could not be saved.');
      reportTurn('failed', shown.code);
      await show(threadId, handle, { kind: 'failed', text, error: shown, retryMessageId: undefined });
      throw error;
    }
    await show(
      threadId,
      handle,
      result.stopped
        ? { kind: 'stopped', text }
        : { kind: 'done', text, usage: result.usage, refused: result.refused },
    );
    reportTurn(result.stopped ? 'stopped' : 'done');
  }

  /** Shows how a turn ended; a thread that cannot show it (archived, locked) must not stop the queue. */
  async function show(threadId: string, handle: ReplyHandle, outcome: ReplyOutcome): Promise<void> {
    try {
      await handle.finish(outcome);
    } catch (error) {
      logger.error({ err: error, threadId, outcome: outcome.kind }, 'cannot show the reply in the thread');
    }
  }

  async function removeFromInbox(threadId: string, ids: Set<string>): Promise<void> {
    await sessions.update(threadId, (s) => ({ ...s, inbox: s.inbox.filter((m) => !ids.has(m.messageId)) }));
  }

  async function failBatch(threadId: string, batch: PendingMessage[], cause: unknown): Promise<void> {
    const ids = new Set(batch.map((m) => m.messageId));
    await sessions.update(threadId, (s) => ({
      ...s,
      inbox: s.inbox.filter((m) => !ids.has(m.messageId)),
      failed: [
        ...s.failed.filter((m) => !ids.has(m.messageId)),
        ...batch.map((m) => ({ ...m, attempts: 0 })),
      ].slice(-MAX_FAILED),
    }));
    logger.debug({ threadId, messageIds: [...ids], err: cause }, 'messages moved to failed');
  }

  return {
    async startThread({ threadId, guildId, userId, instructions }) {
      const existing = await sessions.get(threadId);
      if (existing) return existing;
      const now = clock.now();
      const root: Branch = {
        id: 'b1',
        parentId: undefined,
        forkPoint: 0,
        label: 'start',
        createdBy: userId,
        createdAt: now,
        ownItems: 0,
        provider: undefined,
      };
      const session: ThreadSession = {
        version: SCHEMA_VERSION,
        threadId,
        guildId,
        backend: backend.kind,
        createdBy: userId,
        createdAt: now,
        activeBranchId: root.id,
        branches: { [root.id]: root },
        nextBranchNumber: 2,
        settings: { ...deps.defaults, ...(instructions ? { instructions } : {}) },
        inbox: [],
        failed: [],
        openVoteId: undefined,
        forkHistory: [],
      };
      await sessions.create(session);
      return session;
    },

    async receive(message) {
      const session = await sessions.get(message.threadId);
      if (!session) return 'ignored';
      if (session.backend !== backend.kind) {
        throw new BotError(
          'backend_mismatch',
          `This thread was started with the ${session.backend} backend, but the bot now runs ${backend.kind}; start a new thread with /chat.`,
        );
      }
      const pending: PendingMessage = {
        messageId: message.messageId,
        authorId: message.authorId,
        authorName: message.authorName,
        text: `${message.authorName}: ${message.text}`,
        receivedAt: clock.now(),
        attempts: 0,
      };
      const queued = await sessions.update(message.threadId, (s) =>
        s.inbox.some((m) => m.messageId === message.messageId)
          ? s
          : { ...s, inbox: enqueue(s.inbox, pending) },
      );
      telemetry.queueDepth({ threadId: message.threadId, waiting: queued.inbox.length });
      await sessions.setHasWork(message.threadId, true);
      kick(message.threadId);
      return 'queued';
    },

    async retry(threadId, messageId) {
      let found = false;
      await sessions.update(threadId, (s) => {
        const message = s.failed.find((m) => m.messageId === messageId);
        found = message !== undefined;
        if (!message) return s;
        // A failed turn may have reached the provider: count it as an attempt, so the retry cleans up after it.
        return {
          ...s,
          failed: s.failed.filter((m) => m !== message),
          inbox: [...s.inbox, { ...message, attempts: 1 }],
        };
      });
      if (!found) throw new NotFoundError('This message was already answered or retried.');
      await sessions.setHasWork(threadId, true);
      kick(threadId);
    },

    kick,

    async resume() {
      for (const threadId of await sessions.threadsWithWork()) kick(threadId);
    },

    async idle() {
      while (draining.size > 0) await Promise.all(draining.values());
    },
  };
}

/**
 * Adds a message to an inbox in the order the messages were sent. Messages of one thread can reach different
 * processes, whose writes to the inbox may land in either order; ids that are numbers growing with time (Discord's
 * snowflakes) put a message that was stored a moment late back in its place. Other ids keep arrival order.
 */
function enqueue(inbox: PendingMessage[], message: PendingMessage): PendingMessage[] {
  const later = (a: string, b: string) =>
    /^\d+$/.test(a) && /^\d+$/.test(b) && (a.length > b.length || (a.length === b.length && a > b));
  // Only among the messages that wait at the end: one already being answered (attempts > 0) keeps its place.
  let at = inbox.length;
  while (at > 0 && inbox[at - 1]!.attempts === 0 && later(inbox[at - 1]!.messageId, message.messageId))
    at -= 1;
  return [...inbox.slice(0, at), message, ...inbox.slice(at)];
}

/** Reports a generation's billed tokens; the kinds do not overlap (input is the uncached part of the prompt). */
export function reportTokens(telemetry: Telemetry, model: string, usage: Usage | undefined): void {
  if (!usage) return;
  const cached = Math.min(usage.cachedInputTokens ?? 0, usage.inputTokens);
  telemetry.tokens({ model, kind: 'input', count: usage.inputTokens - cached });
  if (cached > 0) telemetry.tokens({ model, kind: 'cached_input', count: cached });
  telemetry.tokens({ model, kind: 'output', count: usage.outputTokens });
}

export function generationOptions(
  settings: ThreadSettings,
  overrides: {
    model?: string | undefined;
    style?: string | undefined;
    temperature?: number | undefined;
  } = {},
) {
  const instructions = [settings.instructions, overrides.style].filter(Boolean).join('\n\n') || undefined;
  return { model: overrides.model ?? settings.model, instructions, temperature: overrides.temperature };
}
