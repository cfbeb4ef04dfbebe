import { BadInputError, NotFoundError } from './errors.ts';
import type {
  Branch,
  CloseReason,
  ProviderState,
  ThreadSession,
  Vote,
  VoteCancelReason,
  VoteOption,
} from './model.ts';

export const LETTERS = ['A', 'B', 'C', 'D', 'E'] as const;

/** How far back posting in a thread counts as being active in it, for the default quorum. */
export const ACTIVE_WINDOW_MS = 30 * 60_000;

/**
 * The votes that close a vote at once: the thread's setting, or (0, the default) a majority of the people who posted
 * in the thread in the last half hour, the one who asked included.
 */
export function quorumFor(session: ThreadSession, invokerId: string, now: number): number {
  if (session.settings.quorum > 0) return session.settings.quorum;
  const active = new Set(
    Object.entries(session.activity)
      .filter(([, at]) => at > now - ACTIVE_WINDOW_MS)
      .map(([id]) => id),
  );
  active.add(invokerId);
  return Math.floor(active.size / 2) + 1;
}

/**
 * A vote's life as pure transitions of its thread's record. Each event is applied in one atomic store update, so a
 * vote is never half-open: opening adds its branches, closing switches the thread to the winner, in the same write.
 */
export type VoteEvent =
  /** A fork begins: the vote is generating and its branch numbers are reserved. */
  | { type: 'fork_started'; vote: Vote; reserved: number }
  /** Every alternative ended: the vote opens with its branches, and the messages it answers leave the inbox. */
  | { type: 'opened'; voteId: string; options: VoteOption[]; branches: Branch[]; deadline: number }
  | { type: 'ballot_posted'; voteId: string; messageId: string }
  /** A person's click: one vote each, moved by another click, removed by the same one; may close at the quorum. */
  | { type: 'ballot_cast'; voteId: string; userId: string; letter: string; at: number }
  | {
      type: 'closed';
      voteId: string;
      winner: string;
      userId: string | undefined;
      reason: CloseReason;
      at: number;
    }
  /** The provider-side move to the winner is done (or was not needed). */
  | {
      type: 'applied';
      voteId: string;
      parentProvider: ProviderState | undefined;
      winnerProvider: ProviderState | undefined;
    }
  | { type: 'cancelled'; voteId: string; reason: VoteCancelReason };

/** A vote that still holds the thread: new messages wait until it is applied or cancelled. */
export function isLive(vote: Vote | undefined): vote is Vote {
  return (
    vote !== undefined && (vote.status === 'generating' || vote.status === 'open' || vote.status === 'closed')
  );
}

/** A vote people can still act on; a closed one only waits for its worker to apply it. */
export function isUndecided(vote: Vote | undefined): vote is Vote {
  return vote !== undefined && (vote.status === 'generating' || vote.status === 'open');
}

export function tally(vote: Vote): Map<string, number> {
  const counts = new Map(vote.options.filter((o) => o.status === 'ok').map((o) => [o.letter, 0]));
  for (const letter of Object.values(vote.ballots)) counts.set(letter, (counts.get(letter) ?? 0) + 1);
  return counts;
}

/** Plurality; ties go to the earliest letter; no votes at all: the first alternative that finished. */
export function leader(vote: Vote): string {
  let best: string | undefined;
  let bestCount = -1;
  for (const [letter, count] of tally(vote)) {
    if (count > bestCount) {
      best = letter;
      bestCount = count;
    }
  }
  if (!best) throw new BadInputError('No alternative finished, so there is nothing to choose.');
  return best;
}

/** The letter that has reached the quorum, if any. */
export function quorumReached(vote: Vote): string | undefined {
  for (const [letter, count] of tally(vote)) if (count >= vote.quorum) return letter;
  return undefined;
}

/** What one click did to the person's ballot. */
export function ballotChange(before: Vote, after: Vote, userId: string): 'added' | 'moved' | 'removed' {
  const was = before.ballots[userId];
  const is = after.ballots[userId];
  if (is === undefined) return 'removed';
  return was === undefined ? 'added' : 'moved';
}

/** The thread's vote with this id, or a clear error for a click on an older ballot. */
export function voteOf(session: ThreadSession, voteId: string): Vote {
  const vote = session.vote;
  if (!vote || vote.id !== voteId)
    throw new NotFoundError('This vote no longer exists: a newer one replaced it.');
  return vote;
}

function withVote(session: ThreadSession, vote: Vote): ThreadSession {
  return { ...session, vote };
}

function close(
  session: ThreadSession,
  vote: Vote,
  winner: string,
  closedBy: NonNullable<Vote['closedBy']>,
  at: number,
): ThreadSession {
  const option = vote.options.find((o) => o.letter === winner);
  if (option?.status !== 'ok' || !option.branchId)
    throw new BadInputError(`Alternative ${winner} cannot be chosen.`);
  const moved = option.branchId !== session.activeBranchId;
  return {
    ...session,
    activeBranchId: option.branchId,
    forkHistory: moved
      ? [...session.forkHistory, { before: session.activeBranchId, at }]
      : session.forkHistory,
    vote: { ...vote, status: 'closed', winner, closedBy, closedAt: at },
  };
}

export function applyVoteEvent(session: ThreadSession, event: VoteEvent): ThreadSession {
  if (event.type === 'fork_started') {
    if (isLive(session.vote))
      throw new BadInputError('A vote is already open in this thread; it has to close first.');
    return { ...session, vote: event.vote, nextBranchNumber: session.nextBranchNumber + event.reserved };
  }
  const vote = voteOf(session, event.voteId);
  switch (event.type) {
    case 'opened': {
      if (vote.status !== 'generating') throw new BadInputError('This vote is no longer being prepared.');
      const answered = new Set(vote.answersMessageIds);
      return {
        ...session,
        branches: { ...session.branches, ...Object.fromEntries(event.branches.map((b) => [b.id, b])) },
        inbox: session.inbox.filter((m) => !answered.has(m.messageId)),
        vote: { ...vote, status: 'open', options: event.options, deadline: event.deadline },
      };
    }
    case 'ballot_posted':
      return withVote(session, { ...vote, ballotMessageId: event.messageId });
    case 'ballot_cast': {
      if (vote.status !== 'open') throw closedError(vote);
      const option = vote.options.find((o) => o.letter === event.letter);
      if (option?.status !== 'ok') throw new BadInputError(`Alternative ${event.letter} cannot be chosen.`);
      const ballots = { ...vote.ballots };
      if (ballots[event.userId] === event.letter) delete ballots[event.userId];
      else ballots[event.userId] = event.letter;
      const cast = { ...vote, ballots };
      const decided = quorumReached(cast);
      return decided
        ? close(session, cast, decided, { userId: event.userId, reason: 'quorum' }, event.at)
        : withVote(session, cast);
    }
    case 'closed':
      if (vote.status !== 'open') throw closedError(vote);
      return close(session, vote, event.winner, { userId: event.userId, reason: event.reason }, event.at);
    case 'applied': {
      if (vote.status !== 'closed') return session;
      const set = (branches: Record<string, Branch>, id: string, provider: ProviderState | undefined) =>
        Object.hasOwn(branches, id) ? { ...branches, [id]: { ...branches[id]!, provider } } : branches;
      const winner = vote.options.find((o) => o.letter === vote.winner)?.branchId ?? vote.parentBranchId;
      let branches = set(session.branches, vote.parentBranchId, event.parentProvider);
      branches = set(branches, winner, event.winnerProvider);
      return { ...session, branches, vote: { ...vote, status: 'applied' } };
    }
    case 'cancelled':
      if (vote.status !== 'generating' && vote.status !== 'open') return session;
      return withVote(session, { ...vote, status: 'cancelled', cancelReason: event.reason });
  }
}

function closedError(vote: Vote): BadInputError {
  if (vote.status === 'closed' || vote.status === 'applied')
    return new BadInputError(`This vote is already closed: ${vote.winner} won.`);
  if (vote.status === 'cancelled') return new BadInputError('This vote was cancelled.');
  return new BadInputError('This vote is not open yet.');
}

/**
 * A moderator's action takes the thread out of any vote: one still generating or open is cancelled; one closed but
 * not yet moved at the provider counts as applied as it stands (the winner gets a copy on its next turn).
 */
export function supersedeVote(session: ThreadSession): ThreadSession {
  const vote = session.vote;
  if (!vote) return session;
  if (vote.status === 'generating' || vote.status === 'open')
    return withVote(session, { ...vote, status: 'cancelled', cancelReason: 'moderator' });
  if (vote.status === 'closed') return withVote(session, { ...vote, status: 'applied' });
  return session;
}
