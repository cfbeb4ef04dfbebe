import { randomBytes, randomUUID } from 'node:crypto';
import { BadInputError, BotError, NotAllowedError, NotFoundError, RateLimitedError } from './errors.ts';
import { type Branch, type Item, type PendingMessage, SCHEMA_VERSION, type ThreadSession } from './model.ts';
import type {
  Clock,
  LockService,
  Logger,
  ModelBackend,
  ReplyHandle,
  Store,
  ThreadPresenter,
  Variant,
} from './ports.ts';
import type { RunningTurns } from './running-turns.ts';
import type { SessionRepository } from './sessions.ts';
import { stripThink } from './strip-think.ts';
import { noTelemetry, type Telemetry } from './telemetry.ts';
import { generationOptions, reportTokens } from './turns.ts';
import {
  type CloseReason,
  castBallot,
  closeVote,
  LETTERS,
  leader,
  quorumReached,
  type Vote,
  type VoteOption,
} from './votes.ts';

const voteKey = (voteId: string) => `vote:${voteId}`;
const cooldownKey = (userId: string) => `cooldown:alternatives:${userId}`;
const OPEN_VOTES = 'index:open-votes';
/** Applying a winner takes a few provider calls; a close older than this whose vote is still listed was abandoned. */
const ABANDONED_CLOSE_MS = 60_000;

export interface AlternativesDeps {
  store: Store;
  sessions: SessionRepository;
  backend: ModelBackend;
  locks: LockService;
  presenter: ThreadPresenter & BallotPresenter;
  running: RunningTurns;
  clock: Clock;
  logger: Logger;
  limits: { maxCount: number; cooldownMs: number };
  /** Starts answering the thread's waiting messages (once a vote has closed). */
  kick(threadId: string): void;
  /** Where forks, votes, tokens and failed alternatives are reported (default: nowhere). */
  telemetry?: Telemetry;
}

/** How the core shows a ballot; the Discord layer renders it from the stored vote. */
export interface BallotPresenter {
  showBallot(threadId: string, vote: Vote): Promise<string>;
  /** Shows the vote's current state; `load` reads it when the edit runs, so merged updates show the latest. */
  updateBallot(threadId: string, voteId: string, load: () => Promise<Vote | undefined>): Promise<void>;
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
}

export interface AlternativesService {
  /** Checks a request before anything is shown (so bad input changes nothing). */
  check(request: Pick<AlternativesRequest, 'threadId' | 'userId' | 'isModerator' | 'count'>): Promise<number>;
  /** Forks the thread, generates the alternatives in parallel and opens a vote. */
  request(request: AlternativesRequest): Promise<Vote>;
  /** Auto-alternatives: the waiting messages get alternatives instead of one reply (runs inside the thread's turn). */
  forInbox(session: ThreadSession, batch: PendingMessage[]): Promise<void>;
  vote(
    voteId: string,
    userId: string,
    letter: string,
  ): Promise<{ vote: Vote; change: 'added' | 'moved' | 'removed' }>;
  /** Close by plurality: the invoker or a moderator. */
  close(voteId: string, userId: string, isModerator: boolean): Promise<Vote>;
  /** A moderator closes the vote on the alternative they pick. */
  pick(voteId: string, letter: string, userId: string, isModerator: boolean): Promise<Vote>;
  /** Closes votes whose deadline passed while the bot was down, and re-arms the others. */
  resume(): Promise<void>;
  /**
   * Closes every open vote whose deadline has passed, whichever process opened it (its timer died with it).
   * Closing is exactly-once, so every process of a fleet may sweep.
   */
  sweep(): Promise<void>;
  getVote(voteId: string): Promise<Vote | undefined>;
  /** Ends an open vote without a winner (a moderator moved the thread elsewhere); the ballot says so. */
  cancelVote(voteId: string, reason: string): Promise<void>;
}

export function createAlternativesService(deps: AlternativesDeps): AlternativesService {
  const { store, sessions, backend, locks, presenter, running, clock, logger, limits } = deps;
  const telemetry = deps.telemetry ?? noTelemetry;
  const timers = new Map<string, { cancel(): void }>();

  async function getVote(voteId: string): Promise<Vote | undefined> {
    const vote = await store.get<Vote>(voteKey(voteId));
    if (vote && vote.version !== SCHEMA_VERSION)
      throw new BotError('schema_version', 'This vote was saved by another version of threadfork.');
    return vote;
  }

  async function check({
    threadId,
    userId,
    isModerator,
    count,
  }: Parameters<AlternativesService['check']>[0]): Promise<number> {
    const session = await sessions.get(threadId);
    if (!session) throw new BadInputError('Use /alternatives in a thread started with /chat.');
    if (!session.settings.alternativesEnabled)
      throw new NotAllowedError('A moderator turned alternatives off in this thread.');
    if (session.openVoteId)
      throw new BadInputError('A vote is already open in this thread; it has to close first.');
    const max = Math.min(limits.maxCount, LETTERS.length);
    const wanted = count ?? session.settings.alternativesCount;
    if (!Number.isInteger(wanted) || wanted < 2 || wanted > max)
      throw new BadInputError(`The count must be between 2 and ${max}.`);
    if (!isModerator && limits.cooldownMs > 0) {
      const until = (await store.get<number>(cooldownKey(userId))) ?? 0;
      const wait = until - clock.now();
      if (wait > 0)
        throw new RateLimitedError(
          `You can ask for alternatives again in ${Math.ceil(wait / 1000)} s.`,
          wait,
        );
    }
    return wanted;
  }

  /** The fork itself; the caller holds the thread's lock. */
  async function fork(
    session: ThreadSession,
    spec: {
      invokerId: string;
      count: number;
      input: Item | undefined;
      replyTo: string | undefined;
      styles: readonly string[];
      models: readonly string[];
      temperature: number | undefined;
    },
  ): Promise<Vote> {
    const threadId = session.threadId;
    const parent = session.branches[session.activeBranchId]!;
    const history = await sessions.history(session, parent.id);
    let base: Item[];
    let input: Item[];
    let forkPoint: number;
    const options: VoteOption[] = [];
    if (spec.input) {
      base = history;
      input = [spec.input];
      forkPoint = history.length;
    } else {
      const lastUser = history.findLastIndex((item) => item.role === 'user');
      if (lastUser < 0) throw new BadInputError('There is no message to answer again yet: give a prompt.');
      base = history.slice(0, lastUser);
      input = [history[lastUser]!];
      forkPoint = lastUser + 1;
      // The reply the message already got stands as alternative A.
      options.push({ letter: 'A', branchId: parent.id, label: 'current reply', status: 'ok' });
    }

    const voteId = randomBytes(6).toString('base64url');
    const now = clock.now();
    const vote: Vote = {
      version: SCHEMA_VERSION,
      id: voteId,
      threadId,
      invokerId: spec.invokerId,
      parentBranchId: parent.id,
      forkPoint,
      options,
      ballots: {},
      quorum: session.settings.quorum,
      deadline: now + session.settings.voteMs,
      status: 'generating',
      winner: undefined,
      closedBy: undefined,
      ballotMessageId: undefined,
      createdAt: now,
    };
    await store.set(voteKey(voteId), vote);
    await sessions.update(threadId, (s) => {
      if (s.openVoteId)
        throw new BadInputError('A vote is already open in this thread; it has to close first.');
      return { ...s, openVoteId: voteId };
    });
    await store.update<string[]>(OPEN_VOTES, (ids = []) => [...ids, voteId]);

    const fresh = Array.from({ length: spec.count - options.length }, (_, index) => {
      const letter = LETTERS[options.length + index]!;
      const style = spec.styles[index]?.trim() || undefined;
      const model = spec.models[index]?.trim() || session.settings.model;
      const label =
        [style, model !== session.settings.model ? model : undefined].filter(Boolean).join(' · ') ||
        'default';
      return { letter, style, model, label, turnId: `${voteId}-${letter}` };
    });
    const handles: ReplyHandle[] = [];
    for (const alternative of fresh) {
      handles.push(
        await presenter.startReply(threadId, {
          turnId: alternative.turnId,
          header: `**${alternative.letter}** · ${alternative.label}`,
          replyToMessageId: spec.replyTo,
        }),
      );
    }
    const variants: Variant[] = fresh.map((alternative, index) => {
      let raw = '';
      return {
        options: generationOptions(session.settings, {
          model: alternative.model,
          style: alternative.style,
          temperature: spec.temperature,
        }),
        signal: running.start(alternative.turnId, [spec.invokerId]),
        onDelta(delta) {
          raw += delta;
          handles[index]!.update(stripThink(raw));
        },
      };
    });
    const results = await backend.generateAlternatives({ history: base, input, variants }).finally(() => {
      for (const alternative of fresh) running.end(alternative.turnId);
    });

    const newBranches: Branch[] = [];
    let nextNumber = session.nextBranchNumber;
    for (const [index, result] of results.entries()) {
      const alternative = fresh[index]!;
      const handle = handles[index]!;
      if (result.status === 'rejected') {
        const error =
          result.reason instanceof BotError
            ? result.reason
            : new BotError('failed', 'This alternative failed.');
        logger.warn(
          { err: result.reason, threadId, voteId, letter: alternative.letter },
          'alternative failed',
        );
        telemetry.error({ kind: error.code });
        options.push({
          letter: alternative.letter,
          branchId: undefined,
          label: alternative.label,
          status: 'failed',
          error: error.userMessage,
        });
        await handle.finish({ kind: 'failed', text: '', error, retryMessageId: undefined });
        continue;
      }
      reportTokens(telemetry, alternative.model, result.value.usage);
      const text = stripThink(result.value.text);
      const branch: Branch = {
        id: `b${nextNumber++}`,
        parentId: parent.id,
        forkPoint,
        label: `alternative ${alternative.letter} · ${alternative.label}`,
        createdBy: spec.invokerId,
        createdAt: now,
        ownItems: spec.input ? 2 : 1,
        provider: undefined,
      };
      const reply: Item = {
        id: randomUUID(),
        role: 'assistant',
        text,
        ...(result.value.responseId ? { responseId: result.value.responseId } : {}),
        ...(result.value.stopped ? { stopped: true } : {}),
      };
      await sessions.appendItems(threadId, branch.id, spec.input ? [spec.input, reply] : [reply]);
      newBranches.push(branch);
      options.push({
        letter: alternative.letter,
        branchId: branch.id,
        label: alternative.label,
        status: 'ok',
        usage: result.value.usage,
      });
      await handle.finish(
        result.value.stopped
          ? { kind: 'stopped', text }
          : { kind: 'done', text, usage: result.value.usage, refused: result.value.refused },
      );
    }

    await sessions.update(threadId, (s) => ({
      ...s,
      nextBranchNumber: nextNumber,
      branches: { ...s.branches, ...Object.fromEntries(newBranches.map((b) => [b.id, b])) },
    }));
    if (!options.some((o) => o.status === 'ok' && o.branchId !== parent.id)) {
      telemetry.alternatives({ count: spec.count, outcome: 'failed' });
      await cancel(
        { ...vote, options },
        'Every alternative failed, so there is nothing to vote on; the thread goes on as before.',
      );
      throw new BotError('all_failed', 'Every alternative failed; nothing changed. Try again in a moment.');
    }
    const opened: Vote = {
      ...vote,
      options,
      status: 'open',
      deadline: clock.now() + session.settings.voteMs,
    };
    await store.set(voteKey(voteId), opened);
    const ballotMessageId = await presenter.showBallot(threadId, opened);
    const withBallot = (await store.update<Vote>(voteKey(voteId), (v) =>
      v ? { ...v, ballotMessageId } : v,
    ))!;
    arm(withBallot);
    telemetry.alternatives({ count: spec.count, outcome: 'opened' });
    return withBallot;
  }

  async function cancel(vote: Vote, notice: string): Promise<void> {
    timers.get(vote.id)?.cancel();
    timers.delete(vote.id);
    await store.update<Vote>(voteKey(vote.id), (current) => ({ ...(current ?? vote), status: 'cancelled' }));
    await sessions.update(vote.threadId, (s) =>
      s.openVoteId === vote.id ? { ...s, openVoteId: undefined } : s,
    );
    await store.update<string[]>(OPEN_VOTES, (ids = []) => ids.filter((id) => id !== vote.id));
    if (vote.ballotMessageId) {
      await presenter
        .updateBallot(vote.threadId, vote.id, () => getVote(vote.id))
        .catch((error: unknown) =>
          logger.warn({ err: error, threadId: vote.threadId }, 'could not mark the ballot cancelled'),
        );
    }
    await presenter.notice(vote.threadId, notice);
    deps.kick(vote.threadId);
  }

  function arm(vote: Vote): void {
    timers.get(vote.id)?.cancel();
    timers.set(
      vote.id,
      clock.setTimer(
        () => {
          timers.delete(vote.id);
          finish(vote.id, undefined, (v) => ({ winner: leader(v), reason: 'deadline' })).catch(
            (error: unknown) =>
              logger.error(
                { err: error, voteId: vote.id, threadId: vote.threadId },
                'closing a vote at its deadline failed',
              ),
          );
        },
        Math.max(0, vote.deadline - clock.now()),
      ),
    );
  }

  /** Closes a vote exactly once, then moves the thread onto the winner. */
  async function finish(
    voteId: string,
    userId: string | undefined,
    decide: (vote: Vote) => { winner: string; reason: CloseReason },
  ): Promise<Vote> {
    let closedHere = false;
    let closedFor: CloseReason | undefined;
    const vote = await store.update<Vote>(voteKey(voteId), (current) => {
      closedHere = false;
      if (!current) throw new NotFoundError('This vote no longer exists.');
      if (current.status !== 'open') return current;
      const { winner, reason } = decide(current);
      closedHere = true;
      closedFor = reason;
      return closeVote(current, winner, { userId, reason }, clock.now());
    });
    if (!vote || !closedHere) {
      if (vote?.status === 'closed')
        throw new BadInputError(`This vote is already closed: ${vote.winner} won.`);
      throw new BadInputError('This vote is no longer open.');
    }
    telemetry.vote({ outcome: 'closed', reason: closedFor ?? 'unknown' });
    await applyWinner(vote);
    return vote;
  }

  async function applyWinner(vote: Vote): Promise<void> {
    timers.get(vote.id)?.cancel();
    timers.delete(vote.id);
    const threadId = vote.threadId;
    const winnerBranchId =
      vote.options.find((o) => o.letter === vote.winner)?.branchId ?? vote.parentBranchId;
    const session = await sessions.get(threadId);
    if (!session) return;
    if (session.openVoteId !== vote.id) {
      // Already applied (the thread may have moved on since): only the index still lists it.
      await store.update<string[]>(OPEN_VOTES, (ids = []) => ids.filter((id) => id !== vote.id));
      return;
    }
    const parent = session.branches[vote.parentBranchId];
    let provider = session.branches[winnerBranchId]?.provider;
    let parentProvider = parent?.provider;
    if (winnerBranchId !== vote.parentBranchId && parent?.provider) {
      // The common case: the winner extends its parent's conversation instead of copying the whole history.
      try {
        const [from, to] = await Promise.all([
          sessions.history(session, parent.id),
          sessions.history(session, winnerBranchId),
        ]);
        provider = await backend.transfer({
          provider: parent.provider,
          from,
          to,
          sharedPrefix: vote.forkPoint,
        });
      } catch (error) {
        logger.warn(
          { err: error, threadId, voteId: vote.id },
          'moving the conversation to the winner failed; it will be copied on its next turn',
        );
        provider = undefined;
      }
      parentProvider = undefined;
    }
    await sessions.update(threadId, (s) => ({
      ...s,
      activeBranchId: winnerBranchId,
      openVoteId: s.openVoteId === vote.id ? undefined : s.openVoteId,
      forkHistory:
        winnerBranchId === vote.parentBranchId
          ? s.forkHistory
          : [...s.forkHistory, { before: vote.parentBranchId, voteId: vote.id, at: clock.now() }],
      branches: {
        ...s.branches,
        ...(s.branches[vote.parentBranchId]
          ? { [vote.parentBranchId]: { ...s.branches[vote.parentBranchId]!, provider: parentProvider } }
          : {}),
        ...(s.branches[winnerBranchId]
          ? { [winnerBranchId]: { ...s.branches[winnerBranchId]!, provider } }
          : {}),
      },
    }));
    await store.update<string[]>(OPEN_VOTES, (ids = []) => ids.filter((id) => id !== vote.id));
    await presenter
      .updateBallot(threadId, vote.id, () => getVote(vote.id))
      .catch((error: unknown) =>
        logger.warn({ err: error, threadId }, 'could not show the result on the ballot'),
      );
    logger.info(
      {
        threadId,
        voteId: vote.id,
        winner: vote.winner,
        branchId: winnerBranchId,
        reason: vote.closedBy?.reason,
      },
      'vote closed',
    );
    deps.kick(threadId);
  }

  async function startCooldown(userId: string, isModerator: boolean): Promise<void> {
    if (!isModerator && limits.cooldownMs > 0)
      await store.set(cooldownKey(userId), clock.now() + limits.cooldownMs);
  }

  return {
    check,
    getVote,

    async request(request) {
      const count = await check(request);
      const vote = await locks.withLock(`thread:${request.threadId}`, async () => {
        const session = await sessions.get(request.threadId);
        if (!session) throw new BadInputError('This thread is not managed by threadfork.');
        if (session.openVoteId)
          throw new BadInputError('A vote is already open in this thread; it has to close first.');
        const input: Item | undefined = request.prompt
          ? {
              id: randomUUID(),
              role: 'user',
              text: `${request.prompt.authorName}: ${request.prompt.text}`,
              sourceMessageIds: [request.prompt.messageId],
            }
          : undefined;
        return fork(session, {
          invokerId: request.userId,
          count,
          input,
          replyTo: request.prompt?.messageId,
          styles: request.styles,
          models: request.models,
          temperature: request.temperature,
        });
      });
      await startCooldown(request.userId, request.isModerator);
      return vote;
    },

    async forInbox(session, batch) {
      const ids = new Set(batch.map((m) => m.messageId));
      const last = batch.at(-1)!;
      const input: Item = {
        id: randomUUID(),
        role: 'user',
        text: batch.map((m) => m.text).join('\n\n'),
        sourceMessageIds: [...ids],
      };
      await sessions.update(session.threadId, (s) => ({
        ...s,
        inbox: s.inbox.filter((m) => !ids.has(m.messageId)),
      }));
      try {
        await fork(session, {
          invokerId: last.authorId,
          count: Math.min(session.settings.autoAlternatives, limits.maxCount),
          input,
          replyTo: last.messageId,
          styles: [],
          models: [],
          temperature: undefined,
        });
      } catch (error) {
        logger.warn({ err: error, threadId: session.threadId }, 'automatic alternatives failed');
        // Nothing was answered: put the messages back as failed so the Retry button can run them.
        await sessions.update(session.threadId, (s) => ({ ...s, failed: [...s.failed, ...batch] }));
      }
    },

    async vote(voteId, userId, letter) {
      let change: 'added' | 'moved' | 'removed' = 'added';
      const updated = await store.update<Vote>(voteKey(voteId), (current) => {
        if (!current) throw new NotFoundError('This vote no longer exists.');
        const result = castBallot(current, userId, letter);
        change = result.change;
        return result.vote;
      });
      const vote = updated!;
      const decided = quorumReached(vote);
      if (decided) {
        try {
          return {
            vote: await finish(voteId, userId, () => ({ winner: decided, reason: 'quorum' })),
            change,
          };
        } catch (error) {
          if (!(error instanceof BadInputError)) throw error;
        }
      } else {
        await presenter.updateBallot(vote.threadId, vote.id, () => getVote(voteId));
      }
      return { vote: (await getVote(voteId)) ?? vote, change };
    },

    async close(voteId, userId, isModerator) {
      const vote = await getVote(voteId);
      if (!vote) throw new NotFoundError('This vote no longer exists.');
      if (!isModerator && vote.invokerId !== userId)
        throw new NotAllowedError(
          'Only the person who asked for the alternatives, or a moderator, can close this vote.',
        );
      return finish(voteId, userId, (v) => ({ winner: leader(v), reason: 'close' }));
    },

    async pick(voteId, letter, userId, isModerator) {
      if (!isModerator) throw new NotAllowedError('Only moderators can pick the winner.');
      return finish(voteId, userId, (v) => {
        const option = v.options.find((o) => o.letter === letter);
        if (option?.status !== 'ok') throw new BadInputError(`Alternative ${letter} cannot be chosen.`);
        return { winner: letter, reason: 'moderator' };
      });
    },

    async cancelVote(voteId, reason) {
      const vote = await getVote(voteId);
      if (!vote || (vote.status !== 'open' && vote.status !== 'generating')) return;
      await cancel(vote, `🚫 The vote was cancelled: ${reason}.`);
      telemetry.vote({ outcome: 'cancelled', reason: 'moderator' });
    },

    async resume() {
      for (const voteId of (await store.get<string[]>(OPEN_VOTES)) ?? []) {
        const vote = await getVote(voteId);
        if (!vote) continue;
        if (vote.status === 'generating') {
          // A live process generating it holds the thread's lock; once we get the lock, it is done or dead.
          await locks.withLock(`thread:${vote.threadId}`, async () => {
            const current = await getVote(voteId);
            if (current?.status === 'generating') {
              await cancel(
                current,
                'The bot restarted while it was generating alternatives; ask again with /alternatives.',
              );
              // How many were asked for is not kept in the vote: the fork is counted, its alternatives are not.
              telemetry.alternatives({ count: 0, outcome: 'cancelled' });
            } else if (current?.status === 'open') {
              arm(current);
            }
          });
        } else if (vote.status === 'open') {
          arm(vote);
        } else if (vote.status === 'closed') {
          await applyWinner(vote);
        }
      }
    },

    async sweep() {
      for (const voteId of (await store.get<string[]>(OPEN_VOTES)) ?? []) {
        const vote = await getVote(voteId);
        if (vote?.status === 'closed' && (vote.closedAt ?? 0) + ABANDONED_CLOSE_MS < clock.now()) {
          // Closed, but the process applying the winner died before it finished: finish its work.
          await applyWinner(vote);
          continue;
        }
        if (vote?.status !== 'open' || vote.deadline > clock.now()) continue;
        await finish(voteId, undefined, (v) => ({ winner: leader(v), reason: 'deadline' })).catch(
          (error: unknown) => {
            if (!(error instanceof BadInputError)) throw error;
          },
        );
      }
    },
  };
}
