import { outcomeOf } from './arena-log.ts';
import { contextView } from './context.ts';
import type { CoreDeps, HeldThread } from './deps.ts';
import { safely } from './deps.ts';
import { cancelFork, postBallot } from './fork.ts';
import { branchOf, type ProviderState } from './model.ts';
import { applyVoteEvent, leader } from './votes.ts';

/**
 * The provider-side half of a closed vote, run by the thread's worker under its lock: the winner takes over its
 * parent's conversation (a cost that does not grow with history), then the vote is marked applied in one update.
 */
export async function applyWinner(deps: CoreDeps, held: HeldThread): Promise<void> {
  const { backend, logger } = deps;
  const session = await held.read();
  const vote = session.vote;
  if (vote?.status !== 'closed') return;
  const parent = branchOf(session, vote.parentBranchId);
  const winnerId = vote.options.find((o) => o.letter === vote.winner)?.branchId ?? vote.parentBranchId;
  let parentProvider: ProviderState | undefined = parent?.provider;
  let winnerProvider: ProviderState | undefined = branchOf(session, winnerId)?.provider;
  if (winnerId !== vote.parentBranchId && parent?.provider) {
    try {
      winnerProvider = await backend.transfer({
        provider: parent.provider,
        // With their condensed forms: the conversation holds the parent's, and the winner inherits it.
        from: contextView(deps, session, parent.id),
        to: contextView(deps, session, winnerId),
        sharedPrefix: vote.forkPoint,
      });
    } catch (error) {
      logger.warn(
        { err: error, threadId: held.threadId, voteId: vote.id },
        'moving the conversation to the winner failed; it will be copied on its next turn',
      );
      winnerProvider = undefined;
    }
    parentProvider = undefined;
  }
  await held.update((s) =>
    applyVoteEvent(s, { type: 'applied', voteId: vote.id, parentProvider, winnerProvider }),
  );
  await recordOutcome(deps, held.threadId);
  deps.telemetry.vote({ outcome: 'closed', reason: vote.closedBy?.reason ?? 'close' });
  logger.info(
    {
      threadId: held.threadId,
      voteId: vote.id,
      winner: vote.winner,
      branchId: winnerId,
      reason: vote.closedBy?.reason,
    },
    'vote closed',
  );
  await refreshBallot(deps, held.threadId);
}

/** The applied vote goes to its server's leaderboard; a failure there is logged and never holds up the thread. */
async function recordOutcome(deps: CoreDeps, threadId: string): Promise<void> {
  const { arena, log, sessions } = deps;
  if (!arena) return;
  await safely(deps, { threadId, what: 'record the vote for the leaderboard' }, async () => {
    const session = await sessions.get(threadId);
    if (!session?.guildId || session.vote?.status !== 'applied') return;
    const outcome = await outcomeOf(session, session.vote, log);
    if (outcome) await arena.append(session.guildId, outcome);
  });
}

/** Closes the thread's open vote on its plurality leader if its deadline has passed (an atomic transition). */
export async function closeIfDue(deps: CoreDeps, threadId: string): Promise<boolean> {
  let closed = false;
  await deps.sessions.update(threadId, (s) => {
    closed = false;
    const vote = s.vote;
    if (vote?.status !== 'open' || vote.deadline > deps.clock.now()) return s;
    closed = true;
    return applyVoteEvent(s, {
      type: 'closed',
      voteId: vote.id,
      winner: leader(vote),
      userId: undefined,
      reason: 'deadline',
      at: deps.clock.now(),
    });
  });
  return closed;
}

export async function refreshBallot(deps: CoreDeps, threadId: string): Promise<void> {
  await safely(deps, { threadId, what: 'update the ballot' }, () =>
    deps.presenter.updateBallot(threadId, () => deps.sessions.get(threadId)),
  );
}

/**
 * What a worker finds when it takes a thread's lock after another holder: a fork left generating (its holder died
 * or lost the lock) is cancelled, leaving the messages it answered in the inbox; an open vote whose ballot was never
 * posted gets it now.
 */
export async function recover(deps: CoreDeps, held: HeldThread): Promise<void> {
  const session = await held.read();
  const vote = session.vote;
  if (vote?.status === 'generating') {
    deps.logger.warn({ threadId: held.threadId, voteId: vote.id }, 'cancelling alternatives left generating');
    await cancelFork(deps, held, session, 'restart', []);
    await refreshBallot(deps, held.threadId);
  } else if (vote?.status === 'open' && !vote.ballotMessageId) {
    await postBallot(deps, held, vote);
  }
}
