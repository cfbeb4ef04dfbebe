import { randomUUID } from 'node:crypto';
import { type BranchView, branchViews, prunableBranches } from './branch-tree.ts';
import { type CondensedView, condensedView, resetCondensed } from './context.ts';
import type { CoreDeps, HeldThread } from './deps.ts';
import { userItemIndex } from './earlier-turn.ts';
import { BadInputError, BotError, NotAllowedError, NotFoundError, RateLimitedError } from './errors.ts';
import { runFork } from './fork.ts';
import {
  type Branch,
  newThreadSession,
  type Part,
  type PendingMessage,
  type ThreadSession,
  type Vote,
} from './model.ts';
import { type ModeratorRequest, moderate } from './moderation.ts';
import type { BranchAction, LockService, Store } from './ports.ts';
import { createThreadWorkers, type ThreadWorkers } from './thread-worker.ts';
import { closeIfDue, refreshBallot } from './vote-jobs.ts';
import {
  ACTIVE_WINDOW_MS,
  applyVoteEvent,
  ballotChange,
  isUndecided,
  LETTERS,
  leader,
  voteOf,
} from './votes.ts';

const cooldownKey = (userId: string) => `cooldown:alternatives:${userId}`;
/** Where threadfork 0.1 listed its open votes. */
const LEGACY_OPEN_VOTES = 'index:open-votes';
/** How many received message ids a thread remembers: far more than can arrive while two processes both get them. */
const RECEIVED_KEPT = 100;

export interface IncomingMessage {
  threadId: string;
  messageId: string;
  authorId: string;
  authorName: string;
  text: string;
  /** The author is a moderator (exempt from the message rate; from budgets with BUDGET_EXEMPT_MODERATORS). */
  isModerator?: boolean;
  /** Its images and files, already stored (AttachmentStore.admit). */
  parts?: Part[];
}

export interface Moderator {
  userId: string;
  isModerator: boolean;
}

export interface AlternativesRequest {
  threadId: string;
  userId: string;
  isModerator: boolean;
  count: number | undefined;
  /** The next user turn, already shown in the thread; undefined: answer the last user message again. */
  prompt: { messageId: string; authorName: string; text: string } | undefined;
  styles: readonly string[];
  models: readonly string[];
  temperature: number | undefined;
  /**
   * "Alternatives from here": the Discord message an earlier bot reply answered; the alternatives replace that reply
   * on a new branch (the turns after it stay on the old one). Undefined: answer the prompt, or the last message.
   */
  from?: string;
}

/** Everything the Discord layer asks of the core; each thread's work goes through its worker. */
export interface ThreadService {
  startThread(thread: {
    threadId: string;
    guildId: string | undefined;
    userId: string;
    instructions?: string | undefined;
  }): Promise<ThreadSession>;
  get(threadId: string): Promise<ThreadSession | undefined>;
  /**
   * Stores a message in the thread's inbox and wakes its worker; 'ignored' for threads the bot does not manage;
   * 'refused' when its author posts too fast or the thread's queue is full (the thread is told, at a bounded rate).
   */
  receive(message: IncomingMessage): Promise<'queued' | 'ignored' | 'refused'>;
  /** Queues a failed message again. */
  retry(threadId: string, messageId: string): Promise<void>;
  /** Ends a running reply early; only whoever asked for it, or a moderator, may. */
  stopReply(turnId: string, by: Moderator): void;
  /** Checks an /alternatives request before anything is shown (so bad input changes nothing); returns the count. */
  checkAlternatives(
    request: Pick<AlternativesRequest, 'threadId' | 'userId' | 'isModerator' | 'count'> &
      Partial<Pick<AlternativesRequest, 'styles' | 'models'>> & {
        /** False when the alternatives answer the last message again (its reply stands as A: one fewer to make). */
        withPrompt?: boolean;
      },
  ): Promise<number>;
  /** Forks the thread on its worker, generates the alternatives in parallel and opens a vote. */
  requestAlternatives(request: AlternativesRequest): Promise<Vote>;
  castBallot(
    threadId: string,
    voteId: string,
    userId: string,
    letter: string,
  ): Promise<{ vote: Vote; change: 'added' | 'moved' | 'removed' }>;
  /** Close by plurality: the invoker or a moderator. */
  closeVote(threadId: string, voteId: string, by: Moderator): Promise<Vote>;
  /** A moderator closes the vote on the alternative they pick. */
  pickWinner(threadId: string, voteId: string, letter: string, by: Moderator): Promise<Vote>;
  /**
   * The whole text of an alternative, for a person who wants to read it in full: the first reply on `branchId` from
   * item `from` on (a vote's fork point). Kept as long as the branch is.
   */
  alternativeText(threadId: string, branchId: string, from: number): Promise<string>;
  listBranches(threadId: string): Promise<BranchView[]>;
  /** What stands for the oldest part of the active branch's history (moderators: /summary). */
  summary(threadId: string, by: Moderator): Promise<CondensedView>;
  /** Forgets the active branch's summary or compaction (moderators); false when there was none. */
  resetSummary(threadId: string, by: Moderator): Promise<boolean>;
  prunable(threadId: string): Promise<Branch[]>;
  moderate(threadId: string, request: ModeratorRequest, by: Moderator): Promise<BranchAction>;
  /** At start-up: re-arms vote deadlines and wakes every thread with work; one bad thread does not stop the rest. */
  resume(): Promise<void>;
  /** Closes votes past their deadline (their timer may have died with another process) and wakes threads with work. */
  sweep(): Promise<void>;
  shutdown(graceMs: number): Promise<void>;
  idle(): Promise<void>;
}

export function createThreadService(
  deps: Omit<CoreDeps, 'armDeadline'> & { locks: LockService; store: Store },
): ThreadService {
  const { sessions, clock, logger, limits, store, running } = deps;
  const timers = new Map<string, { cancel(): void }>();
  const core: CoreDeps & { locks: LockService } = {
    ...deps,
    armDeadline(threadId, deadline) {
      timers.get(threadId)?.cancel();
      timers.set(
        threadId,
        clock.setTimer(
          () => {
            timers.delete(threadId);
            closeIfDue(core, threadId)
              .then(async (closed) => {
                if (closed) {
                  await refreshBallot(core, threadId);
                  workers.kick(threadId);
                }
              })
              .catch((error: unknown) =>
                logger.error({ err: error, threadId }, 'closing a vote at its deadline failed'),
              );
          },
          Math.max(0, deadline - clock.now()),
        ),
      );
    },
  };
  const workers: ThreadWorkers = createThreadWorkers(core);

  async function managed(threadId: string): Promise<ThreadSession> {
    const session = await sessions.get(threadId);
    if (!session) throw new BadInputError('This thread is not managed by threadfork. Start one with /chat.');
    return session;
  }

  function requireModerator(by: Moderator): void {
    if (!by.isModerator)
      throw new NotAllowedError('Only moderators (Manage Threads, or a moderator role) can change branches.');
  }

  /** A vote transition from a click: one atomic update; a close wakes the worker to apply the winner. */
  async function transition(
    threadId: string,
    voteId: string,
    event: (session: ThreadSession) => ThreadSession,
  ) {
    const session = await sessions.update(threadId, (s) => {
      voteOf(s, voteId);
      return event(s);
    });
    const vote = session.vote!;
    if (vote.status === 'closed') {
      timers.get(threadId)?.cancel();
      workers.kick(threadId);
    }
    await refreshBallot(core, threadId);
    return vote;
  }

  async function checkAlternatives({
    threadId,
    userId,
    isModerator,
    count,
    styles = [],
    models = [],
    withPrompt = true,
  }: Parameters<ThreadService['checkAlternatives']>[0]): Promise<number> {
    const session = await sessions.get(threadId);
    if (!session) throw new BadInputError('Use /alternatives in a thread started with /chat.');
    if (!session.settings.alternativesEnabled)
      throw new NotAllowedError('A moderator turned alternatives off in this thread.');
    if (isUndecided(session.vote))
      throw new BadInputError('A vote is already open in this thread; it has to close first.');
    const max = Math.min(limits.maxAlternatives, LETTERS.length);
    const wanted = count ?? session.settings.alternativesCount;
    if (!Number.isInteger(wanted) || wanted < 2 || wanted > max)
      throw new BadInputError(`The count must be between 2 and ${max}.`);
    if (!isModerator && limits.cooldownMs > 0) {
      const wait = ((await store.get<number>(cooldownKey(userId))) ?? 0) - clock.now();
      if (wait > 0) throw cooldownError(wait);
    }
    deps.abuse?.checkVariants({ models, styles, isModerator, defaultModel: session.settings.model });
    // A first look at the budget, so a request over it shows nothing in the thread; the fork reserves for real.
    if (deps.budgets) {
      const each = await deps.budgets.estimate(threadId, 0);
      const fresh = withPrompt ? wanted : wanted - 1;
      await deps.budgets.check({ guildId: session.guildId, userId, threadId, isModerator }, each * fresh);
    }
    return wanted;
  }

  async function earlierTurn(held: HeldThread, messageId: string) {
    const session = await held.read();
    const index = await userItemIndex(deps.log.view(session, session.activeBranchId), messageId);
    if (index === undefined)
      throw new BadInputError(
        'That reply is not on the thread’s current branch (or is not the first message of a reply).',
      );
    return { index, replyTo: messageId };
  }

  function cooldownError(waitMs: number): RateLimitedError {
    return new RateLimitedError(
      `You can ask for alternatives again in ${Math.ceil(waitMs / 1000)} s.`,
      waitMs,
    );
  }

  /** Takes the person's cooldown in one atomic update, so parallel requests cannot all pass; returns the undo. */
  async function takeCooldown(userId: string, isModerator: boolean): Promise<() => Promise<void>> {
    if (isModerator || limits.cooldownMs <= 0) return async () => {};
    let previous: number | undefined;
    await store.update<number>(cooldownKey(userId), (until) => {
      const wait = (until ?? 0) - clock.now();
      if (wait > 0) throw cooldownError(wait);
      previous = until;
      return clock.now() + limits.cooldownMs;
    });
    return async () => {
      await store.update<number>(cooldownKey(userId), () => previous).catch(() => {});
    };
  }

  /** Tells the thread a message was not queued; at most once per rate window per person, so it cannot be spam. */
  async function refuse(
    message: IncomingMessage,
    reason: 'rate_limited' | 'queue_full',
    retryAfterMs: number | undefined,
  ): Promise<'refused'> {
    logger.info({ threadId: message.threadId, userId: message.authorId, reason }, 'message refused');
    deps.telemetry.error({ kind: reason });
    if (await deps.abuse?.takeNotice(message.threadId, message.authorId, reason)) {
      await deps.presenter
        .notice(message.threadId, {
          kind: 'message_refused',
          messageId: message.messageId,
          userId: message.authorId,
          reason,
          retryAfterMs,
        })
        .catch((error: unknown) =>
          logger.warn({ err: error, threadId: message.threadId }, 'could not tell the thread'),
        );
    }
    return 'refused';
  }

  /**
   * threadfork 0.1 listed open votes apart from the threads with work: migrate their threads now, so their deadlines
   * are swept like any other.
   */
  async function adoptLegacyVotes(): Promise<void> {
    const legacy = await store.get<string[]>(LEGACY_OPEN_VOTES);
    if (!legacy) return;
    for (const voteId of legacy) {
      const threadId = (await store.get<{ threadId: string }>(`vote:${voteId}`))?.threadId;
      if (!threadId) continue;
      await sessions
        .get(threadId)
        .catch((error: unknown) => logger.warn({ err: error, threadId }, 'migration failed'));
      await sessions.setHasWork(threadId, true);
    }
    await store.delete(LEGACY_OPEN_VOTES);
  }

  return {
    async startThread({ threadId, guildId, userId, instructions }) {
      const existing = await sessions.get(threadId);
      if (existing) return existing;
      const session = newThreadSession({
        threadId,
        guildId,
        backend: deps.backend.kind,
        createdBy: userId,
        createdAt: clock.now(),
        settings: { ...deps.defaults, ...(instructions ? { instructions } : {}) },
      });
      await sessions.create(session);
      return (await sessions.get(threadId)) ?? session;
    },

    get: (threadId) => sessions.get(threadId),

    async receive(message) {
      const session = await sessions.get(message.threadId);
      if (!session) return 'ignored';
      if (session.backend !== deps.backend.kind) {
        throw new BotError(
          'backend_mismatch',
          `This thread was started with the ${session.backend} backend, but the bot now runs ${deps.backend.kind}; start a new thread with /chat.`,
        );
      }
      const pending: PendingMessage = {
        messageId: message.messageId,
        authorId: message.authorId,
        authorName: message.authorName,
        text: `${message.authorName}: ${message.text}`,
        receivedAt: clock.now(),
        attempts: 0,
        ...(message.isModerator ? { moderator: true } : {}),
        ...(message.parts?.length ? { parts: message.parts } : {}),
      };
      const waitMs = message.isModerator
        ? undefined
        : await deps.abuse?.takeMessage(message.threadId, message.authorId);
      if (waitMs !== undefined) return refuse(message, 'rate_limited', waitMs);
      const maxQueued = deps.abuse?.limits.maxQueued ?? 0;
      let full = false;
      await sessions.update(message.threadId, (s) => {
        full = false;
        if (s.inbox.some((m) => m.messageId === message.messageId)) return s;
        if (s.received?.includes(message.messageId)) return s;
        if (maxQueued > 0 && s.inbox.length >= maxQueued) {
          full = true;
          return s;
        }
        return {
          ...s,
          inbox: enqueue(s.inbox, pending),
          received: [...(s.received ?? []), message.messageId].slice(-RECEIVED_KEPT),
          activity: recentActivity(s.activity, message.authorId, pending.receivedAt),
        };
      });
      if (full) return refuse(message, 'queue_full', undefined);
      await sessions.setHasWork(message.threadId, true);
      workers.kick(message.threadId);
      return 'queued';
    },

    async retry(threadId, messageId) {
      let found = false;
      await sessions.update(threadId, (s) => {
        // The clicked message, and the others of the batch that failed with it, in their order.
        const batch = s.failed.filter((m) => m.messageId === messageId || m.retryWith === messageId);
        found = batch.some((m) => m.messageId === messageId);
        if (!found) return s;
        // A failed turn may have reached the provider: count it as an attempt, so the retry cleans up after it.
        return {
          ...s,
          failed: s.failed.filter((m) => !batch.includes(m)),
          inbox: [...s.inbox, ...batch.map(({ retryWith: _, ...m }) => ({ ...m, attempts: 1 }))],
        };
      });
      if (!found) throw new NotFoundError('This message was already answered or retried.');
      await sessions.setHasWork(threadId, true);
      workers.kick(threadId);
    },

    stopReply(turnId, by) {
      running.stop(turnId, by.userId, by.isModerator);
    },

    checkAlternatives,

    async requestAlternatives(request) {
      // From an earlier reply, every alternative is new (the old reply is not one of them), as with a prompt.
      const count = await checkAlternatives({
        ...request,
        withPrompt: request.prompt !== undefined || request.from !== undefined,
      });
      const undoCooldown = await takeCooldown(request.userId, request.isModerator);
      try {
        return await workers.run(request.threadId, async (held) =>
          runFork(core, held, {
            ...(request.from === undefined ? {} : { from: await earlierTurn(held, request.from) }),
            invokerId: request.userId,
            isModerator: request.isModerator,
            count,
            prompt: request.prompt
              ? {
                  item: {
                    id: randomUUID(),
                    role: 'user',
                    text: `${request.prompt.authorName}: ${request.prompt.text}`,
                    sourceMessageIds: [request.prompt.messageId],
                  },
                  replyTo: request.prompt.messageId,
                }
              : undefined,
            answers: [],
            styles: request.styles,
            models: request.models,
            temperature: request.temperature,
          }),
        );
      } catch (error) {
        await undoCooldown();
        throw error;
      }
    },

    async castBallot(threadId, voteId, userId, letter) {
      let change: 'added' | 'moved' | 'removed' = 'added';
      const vote = await transition(threadId, voteId, (s) => {
        const next = applyVoteEvent(s, { type: 'ballot_cast', voteId, userId, letter, at: clock.now() });
        change = ballotChange(s.vote!, next.vote!, userId);
        return next;
      });
      return { vote, change };
    },

    async closeVote(threadId, voteId, by) {
      const vote = voteOf(await managed(threadId), voteId);
      if (!by.isModerator && vote.invokerId !== by.userId)
        throw new NotAllowedError(
          'Only the person who asked for the alternatives, or a moderator, can close this vote.',
        );
      return transition(threadId, voteId, (s) =>
        applyVoteEvent(s, {
          type: 'closed',
          voteId,
          winner: leader(voteOf(s, voteId)),
          userId: by.userId,
          reason: 'close',
          at: clock.now(),
        }),
      );
    },

    async pickWinner(threadId, voteId, letter, by) {
      if (!by.isModerator) throw new NotAllowedError('Only moderators can pick the winner.');
      return transition(threadId, voteId, (s) =>
        applyVoteEvent(s, {
          type: 'closed',
          voteId,
          winner: letter,
          userId: by.userId,
          reason: 'moderator',
          at: clock.now(),
        }),
      );
    },

    async alternativeText(threadId, branchId, from) {
      const session = await managed(threadId);
      if (!Object.hasOwn(session.branches, branchId))
        throw new NotFoundError('This alternative is no longer kept: its branch was pruned.');
      const reply = (await deps.log.view(session, branchId).read(from)).find((i) => i.role === 'assistant');
      if (!reply) throw new NotFoundError('This alternative has no text to show.');
      return reply.text;
    },

    async listBranches(threadId) {
      return branchViews(await managed(threadId));
    },

    async prunable(threadId) {
      return prunableBranches(await managed(threadId));
    },

    async summary(threadId, by) {
      requireModerator(by);
      return condensedView(deps, await managed(threadId));
    },

    async resetSummary(threadId, by) {
      requireModerator(by);
      await managed(threadId);
      const reset = await workers.run(threadId, (held) => resetCondensed(core, held));
      logger.info({ threadId, userId: by.userId, reset: reset !== undefined }, 'summary reset');
      return reset !== undefined;
    },

    async moderate(threadId, request, by) {
      requireModerator(by);
      await managed(threadId);
      const action = await workers.run(threadId, (held) => moderate(core, held, request, by.userId));
      timers.get(threadId)?.cancel();
      workers.kick(threadId);
      return action;
    },

    async resume() {
      await adoptLegacyVotes();
      for (const threadId of await sessions.threadsWithWork()) {
        try {
          const session = await sessions.get(threadId);
          if (session?.vote?.status === 'open') core.armDeadline(threadId, session.vote.deadline);
          workers.kick(threadId);
        } catch (error) {
          logger.warn({ err: error, threadId }, 'could not resume a thread');
        }
      }
    },

    async sweep() {
      for (const threadId of await sessions.threadsWithWork()) {
        try {
          if (await closeIfDue(core, threadId)) await refreshBallot(core, threadId);
          workers.kick(threadId);
        } catch (error) {
          logger.warn({ err: error, threadId }, 'sweeping a thread failed');
        }
      }
    },

    async shutdown(graceMs) {
      for (const timer of timers.values()) timer.cancel();
      timers.clear();
      await workers.shutdown(graceMs);
    },

    idle: () => workers.idle(),
  };
}

/** Who posted in the thread in the last ACTIVE_WINDOW_MS, with `userId` posting `at`; older entries are dropped. */
function recentActivity(
  activity: Record<string, number>,
  userId: string,
  at: number,
): Record<string, number> {
  const kept = Object.entries(activity).filter(([id, last]) => id !== userId && last > at - ACTIVE_WINDOW_MS);
  return Object.fromEntries([...kept, [userId, at]]);
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
