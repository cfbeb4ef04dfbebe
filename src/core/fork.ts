import { randomBytes, randomInt } from 'node:crypto';
import { promptCacheKey } from './cache-key.ts';
import { contextView, withCondensed } from './context.ts';
import type { CoreDeps, HeldThread } from './deps.ts';
import { safely } from './deps.ts';
import { BadInputError, BotError } from './errors.ts';
import type {
  Branch,
  Item,
  PendingMessage,
  ThreadSession,
  Vote,
  VoteCancelReason,
  VoteOption,
} from './model.ts';
import { branchOf } from './model.ts';
import type { HistoryView, ReplyHandle, Variant } from './ports.ts';
import { reserveFork, settle } from './spending.ts';
import { createThinkFilter } from './strip-think.ts';
import { failMessages, generationOptions, show, shownError, withContext } from './turn.ts';
import { refreshBallot } from './vote-jobs.ts';
import { applyVoteEvent, isLive, LETTERS, quorumFor } from './votes.ts';

/** Fisher-Yates, in place. */
function shuffle<T>(items: T[]): void {
  for (let i = items.length - 1; i > 0; i -= 1) {
    const j = randomInt(i + 1);
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
}

/** What a fork is asked for: by /alternatives, or by the worker for waiting messages (automatic alternatives). */
export interface ForkSpec {
  invokerId: string;
  /** For BUDGET_EXEMPT_MODERATORS; absent: not a moderator. */
  isModerator?: boolean;
  count: number;
  /** The new user turn the alternatives answer; undefined: answer the last user message again. */
  prompt: { item: Item; replyTo: string } | undefined;
  /**
   * "Alternatives from here": answer again the user item at `index` of the active branch's history, replying to the
   * Discord message `replyTo`. The alternatives fork right after that item; the turns after it stay on the old branch.
   */
  from?: { index: number; replyTo: string | undefined };
  /** Waiting messages the fork answers: they stay in the inbox until the vote opens, so a crash loses none. */
  answers: readonly PendingMessage[];
  styles: readonly string[];
  models: readonly string[];
  temperature: number | undefined;
}

interface Planned {
  option: VoteOption;
  style: string | undefined;
  model: string;
  turnId: string;
}

/**
 * A history ending at `length` items of another (the fork point of "answer again"), with its condensed form when that
 * covers no more than the prefix.
 */
function prefixOf(history: HistoryView, length: number): HistoryView {
  return withCondensed(
    {
      length,
      async read(start = 0) {
        if (start >= length) return [];
        return (await history.read(start)).slice(0, length - start);
      },
    },
    history.condensed,
  );
}

/**
 * Forks the thread: reserves the branches and records the generating vote in one update, generates every
 * alternative in parallel, writes their items, and opens the vote with its branches in one more update. Any failure
 * on the way cancels the vote (so the thread never stays frozen) and drops the reserved branches' items.
 */
export async function runFork(deps: CoreDeps, held: HeldThread, spec: ForkSpec): Promise<Vote> {
  const { backend, presenter, running, clock, logger, log, telemetry } = deps;
  const { threadId } = held;
  const before = await held.read();
  if (isLive(before.vote))
    throw new BadInputError('A vote is already open in this thread; it has to close first.');
  const parent = branchOf(before, before.activeBranchId)!;
  // Alternatives see what the branch's next turn would: its condensed form and the items after it.
  const parentHistory = contextView(deps, before, parent.id);

  let base: HistoryView;
  let input: Item[];
  let forkPoint: number;
  const options: VoteOption[] = [];
  if (spec.prompt) {
    base = parentHistory;
    input = [spec.prompt.item];
    forkPoint = parentHistory.length;
  } else if (spec.from) {
    const item = (await prefixOf(parentHistory, spec.from.index + 1).read(spec.from.index))[0];
    if (item?.role !== 'user') throw new BadInputError('That reply is not on the thread’s current branch.');
    forkPoint = spec.from.index + 1;
    base = prefixOf(parentHistory, spec.from.index);
    input = [item];
  } else {
    // "Answer again": the last user item is in the last few items (a turn is a user item and its reply).
    const tail = await parentHistory.read(Math.max(0, parentHistory.length - 4));
    const lastUser = tail.findLastIndex((item) => item.role === 'user');
    if (lastUser < 0) throw new BadInputError('There is no message to answer again yet: give a prompt.');
    forkPoint = parentHistory.length - tail.length + lastUser + 1;
    base = prefixOf(parentHistory, forkPoint - 1);
    input = [tail[lastUser]!];
    // The reply the message already got stands as alternative A.
    options.push({ letter: 'A', branchId: parent.id, style: undefined, model: undefined, status: 'ok' });
  }

  const voteId = randomBytes(6).toString('base64url');
  const now = clock.now();
  const fresh = spec.count - options.length;
  // Blind: the letters go to the asked-for styles and models in a shuffled order, so "B" says nothing of which.
  const order = Array.from({ length: fresh }, (_, index) => index);
  if (before.settings.blind) shuffle(order);
  const planned: Planned[] = order.map((asked, index) => {
    const style = spec.styles[asked]?.trim() || undefined;
    const model = spec.models[asked]?.trim() || before.settings.model;
    const option: VoteOption = {
      letter: LETTERS[options.length + index]!,
      branchId: `b${before.nextBranchNumber + index}`,
      style,
      model: model === before.settings.model ? undefined : model,
      status: 'generating',
    };
    return { option, style, model, turnId: `${voteId}-${option.letter}` };
  });
  const vote: Vote = {
    id: voteId,
    invokerId: spec.invokerId,
    parentBranchId: parent.id,
    forkPoint,
    options: [...options, ...planned.map((p) => p.option)],
    ballots: {},
    quorum: quorumFor(before, spec.invokerId, now),
    blind: before.settings.blind,
    deadline: now + before.settings.voteMs,
    status: 'generating',
    winner: undefined,
    closedBy: undefined,
    closedAt: undefined,
    cancelReason: undefined,
    answersMessageIds: spec.answers.map((m) => m.messageId),
    ballotMessageId: undefined,
    createdAt: now,
  };
  const spend = await reserveFork(deps, held, before, {
    invokerId: spec.invokerId,
    isModerator: spec.isModerator === true,
    count: fresh,
    input,
    answers: spec.answers,
  });
  const started = await held
    .update((s) => {
      if (s.nextBranchNumber !== before.nextBranchNumber || s.activeBranchId !== before.activeBranchId)
        throw new BotError(
          'conflict',
          'The thread changed while the alternatives were being prepared; try again.',
        );
      return applyVoteEvent(s, { type: 'fork_started', vote, reserved: fresh });
    })
    .catch(async (error: unknown) => {
      await settle(deps, threadId, spend, []);
      throw error;
    });
  // Listed while the vote lives, so any process's sweep closes it at its deadline if this one is gone by then.
  await deps.sessions.setHasWork(threadId, true);

  const handles: (ReplyHandle | undefined)[] = [];
  // A fork that is cancelled moves the waiting messages it answers to the failed list (automatic alternatives): the
  // last alternative shown then carries their Retry button, or nothing would bring them back.
  const retryMessageId = spec.answers.at(-1)?.messageId;
  // Set once the alternatives are shown: the place they stream in becomes the ballot, so a cancelled fork updates it.
  let shownBallot = false;
  try {
    // The alternatives stream together where the ballot will be; that place is recorded at once, so whoever finds
    // this vote later (a restart, another process) updates it rather than leaving it half written.
    const live = await presenter.startAlternatives(threadId, {
      vote,
      turns: planned.map((p) => ({ letter: p.option.letter, turnId: p.turnId })),
      replyToMessageId: spec.prompt?.replyTo ?? spec.from?.replyTo ?? spec.answers.at(-1)?.messageId,
    });
    handles.push(...live.replies);
    shownBallot = true;
    await held.update((s) =>
      applyVoteEvent(s, { type: 'ballot_posted', voteId, messageId: live.ballotMessageId }),
    );
    // Each alternative's Stop button; a stop that is not one of these came from the shutdown.
    const stops = planned.map((alternative) => running.start(alternative.turnId, [spec.invokerId]));
    const variants: Variant[] = planned.map((alternative, index) => {
      const visible = createThinkFilter();
      return {
        options: withContext(
          deps,
          generationOptions(started.settings, {
            model: alternative.model,
            style: alternative.style,
            temperature: spec.temperature,
            cacheKey: promptCacheKey(threadId),
          }),
        ),
        signal: AbortSignal.any([stops[index]!, held.signal]),
        onDelta(delta) {
          handles[index]!.update(visible.push(delta));
        },
      };
    });
    const results = await backend.generateAlternatives({ history: base, input, variants }).finally(() => {
      for (const alternative of planned) running.end(alternative.turnId);
    });
    await settle(
      deps,
      threadId,
      spend,
      results.flatMap((r, i) =>
        r.status === 'fulfilled' ? [{ model: planned[i]!.model, usage: r.value.usage }] : [],
      ),
    );
    if (held.lease.signal.aborted) throw held.lease.signal.reason ?? new Error('lock lost');
    if (results.some((r) => r.status === 'fulfilled' && r.value.attachmentsDropped))
      await safely(deps, { threadId, what: 'say the images were not sent' }, () =>
        presenter.notice(threadId, { kind: 'attachments_not_sent', reason: 'model_refused' }),
      );

    const branches: Branch[] = [];
    const ownItems = spec.prompt ? 2 : 1;
    const finishes: { handle: ReplyHandle; outcome: Parameters<ReplyHandle['finish']>[0] }[] = [];
    for (const [index, result] of results.entries()) {
      const alternative = planned[index]!;
      const handle = handles[index]!;
      const text = result.status === 'fulfilled' ? createThinkFilter().push(result.value.text) : '';
      // The shutdown came before this alternative wrote anything: there is nothing to vote on, nor to keep.
      const unwritten =
        result.status === 'fulfilled' && result.value.stopped && !stops[index]!.aborted && !text;
      if (result.status === 'rejected' || unwritten) {
        const error =
          result.status === 'rejected'
            ? shownError(result.reason, 'This alternative failed.')
            : new BotError('shutting_down', 'The bot restarted before this alternative was written.');
        logger.warn(
          {
            err: result.status === 'rejected' ? result.reason : error,
            threadId,
            voteId,
            letter: alternative.option.letter,
          },
          'alternative failed',
        );
        if (!unwritten) telemetry.error({ kind: error.code });
        alternative.option = {
          ...alternative.option,
          branchId: undefined,
          status: 'failed',
          error: error.userMessage,
        };
        finishes.push({ handle, outcome: { kind: 'failed', text: '', error, retryMessageId: undefined } });
        continue;
      }
      const branchId = alternative.option.branchId!;
      const reply: Item = {
        id: `${voteId}-${alternative.option.letter}`,
        role: 'assistant',
        text,
        ...(result.value.responseId ? { responseId: result.value.responseId } : {}),
        ...(result.value.stopped ? { stopped: true } : {}),
      };
      await log.write(
        threadId,
        branchId,
        0,
        spec.prompt ? [spec.prompt.item, reply] : [reply],
        held.lease.fencingToken,
      );
      branches.push({
        id: branchId,
        parentId: parent.id,
        forkPoint,
        origin: {
          kind: 'alternative',
          letter: alternative.option.letter,
          style: alternative.style,
          model: alternative.option.model,
        },
        createdBy: spec.invokerId,
        createdAt: now,
        ownItems,
        provider: undefined,
      });
      alternative.option = { ...alternative.option, status: 'ok', usage: result.value.usage };
      telemetry.tokens({ model: alternative.model, kind: 'input', count: result.value.usage.inputTokens });
      telemetry.tokens({ model: alternative.model, kind: 'output', count: result.value.usage.outputTokens });
      finishes.push({
        handle,
        outcome: result.value.stopped
          ? { kind: 'stopped', text, by: stops[index]!.aborted ? 'person' : 'shutdown' }
          : { kind: 'done', text, usage: result.value.usage, refused: result.value.refused },
      });
    }
    const finalOptions = [...options, ...planned.map((p) => p.option)];
    if (branches.length === 0) {
      // Waiting messages that got only failures go to the failed list: the last reply gets their Retry button. Cut
      // short by the shutdown, they stay in the inbox instead, and the next process answers them.
      const interrupted = held.signal.aborted;
      await cancelFork(
        deps,
        held,
        started,
        interrupted ? 'restart' : 'all_failed',
        interrupted ? [] : spec.answers,
      );
      await Promise.all(
        finishes.map(({ handle, outcome }, index) =>
          show(
            deps,
            threadId,
            handle,
            outcome.kind === 'failed' && index === finishes.length - 1 && !interrupted
              ? { ...outcome, retryMessageId }
              : outcome,
          ),
        ),
      );
      await refreshBallot(deps, threadId);
      throw new BotError(
        'all_failed',
        interrupted
          ? 'The bot restarted before the alternatives were written; ask again in a moment.'
          : 'Every alternative failed; nothing changed. Try again in a moment.',
      );
    }
    const opened = await held.update((s) =>
      applyVoteEvent(s, {
        type: 'opened',
        voteId,
        options: finalOptions,
        branches,
        deadline: clock.now() + s.settings.voteMs,
      }),
    );
    telemetry.alternatives({ count: spec.count, outcome: 'opened' });
    deps.armDeadline(threadId, opened.vote!.deadline);
    // Together, so the alternatives' last words and the opened ballot can be shown by one edit.
    await Promise.all([
      ...finishes.map(({ handle, outcome }) => show(deps, threadId, handle, outcome)),
      postBallot(deps, held, opened.vote!),
    ]);
    return (await held.read()).vote!;
  } catch (error) {
    if (error instanceof BotError && error.code === 'all_failed') throw error;
    await settle(deps, threadId, spend, []);
    const shown = shownError(error, 'The alternatives could not be made.');
    logger.warn({ err: error, threadId, voteId }, 'fork failed');
    // Cancelled first, so the messages are on the failed list before their Retry button shows; a lost lock leaves
    // them in the inbox for the next holder, with nothing to retry.
    if (!held.lease.signal.aborted)
      await cancelFork(deps, held, started, 'failed', spec.answers).catch(() => {});
    const lastShown = handles.findLastIndex((handle) => handle !== undefined);
    for (const [index, handle] of handles.entries())
      if (handle)
        await show(deps, threadId, handle, {
          kind: 'failed',
          text: '',
          error: shown,
          retryMessageId: index === lastShown && !held.lease.signal.aborted ? retryMessageId : undefined,
        });
    if (shownBallot) await refreshBallot(deps, threadId);
    throw shown;
  }
}

/** Posts the ballot of an open vote and records its message; a thread that cannot show it keeps the vote open. */
export async function postBallot(deps: CoreDeps, held: HeldThread, vote: Vote): Promise<void> {
  const messageId = await safely(deps, { threadId: held.threadId, what: 'post the ballot' }, () =>
    deps.presenter.showBallot(held.threadId, vote),
  );
  if (messageId)
    await held.update((s) => applyVoteEvent(s, { type: 'ballot_posted', voteId: vote.id, messageId }));
}

/**
 * Ends a vote that never opened: cancelled in the thread's record, the reserved branches' items dropped, the
 * messages it was answering moved to failed (a Retry button brings them back), and the thread told why.
 */
export async function cancelFork(
  deps: CoreDeps,
  held: HeldThread,
  session: ThreadSession,
  reason: VoteCancelReason,
  answers: readonly PendingMessage[],
): Promise<void> {
  const vote = session.vote!;
  await held.update((s) => {
    const cancelled = applyVoteEvent(s, { type: 'cancelled', voteId: vote.id, reason });
    return answers.length > 0 ? failMessages(cancelled, answers) : cancelled;
  });
  deps.telemetry.alternatives({
    count: vote.options.length,
    outcome: reason === 'all_failed' ? 'failed' : 'cancelled',
  });
  await Promise.all(
    vote.options
      .filter((o) => o.branchId && !Object.hasOwn(session.branches, o.branchId))
      .map((o) =>
        deps.log
          .deleteBranch(held.threadId, o.branchId!, 2)
          .catch((error: unknown) =>
            deps.logger.warn({ err: error, threadId: held.threadId }, 'could not delete an abandoned branch'),
          ),
      ),
  );
  await safely(deps, { threadId: held.threadId, what: 'tell the thread the vote was cancelled' }, () =>
    deps.presenter.notice(held.threadId, {
      kind: 'vote_cancelled',
      reason,
      answeredAgain: answers.length === 0 && vote.answersMessageIds.length > 0,
    }),
  );
}
