import { BadInputError } from './errors.ts';
import type { SCHEMA_VERSION } from './model.ts';
import type { Usage } from './ports.ts';

export const LETTERS = ['A', 'B', 'C', 'D', 'E'] as const;

/** One alternative on a ballot. */
export interface VoteOption {
  letter: string;
  /** The branch this alternative is (undefined when it failed). */
  branchId: string | undefined;
  label: string;
  status: 'ok' | 'failed';
  error?: string;
  usage?: Usage;
}

export type CloseReason = 'quorum' | 'close' | 'deadline' | 'moderator';

/** An open choice between alternatives in one thread. */
export interface Vote {
  version: typeof SCHEMA_VERSION;
  id: string;
  threadId: string;
  invokerId: string;
  /** The branch that was active when the fork was made. */
  parentBranchId: string;
  forkPoint: number;
  options: VoteOption[];
  /** userId -> letter. */
  ballots: Record<string, string>;
  quorum: number;
  deadline: number;
  status: 'generating' | 'open' | 'closed' | 'cancelled';
  winner: string | undefined;
  closedBy: { userId: string | undefined; reason: CloseReason } | undefined;
  /** When it closed; a vote closed long ago whose winner was never applied was left by a process that died. */
  closedAt?: number;
  ballotMessageId: string | undefined;
  createdAt: number;
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

/**
 * One vote per person: pressing another alternative moves the vote, pressing the same one again removes it.
 * Returns the changed vote and what happened to this person's ballot.
 */
export function castBallot(
  vote: Vote,
  userId: string,
  letter: string,
): { vote: Vote; change: 'added' | 'moved' | 'removed'; from?: string } {
  if (vote.status !== 'open') throw new BadInputError('This vote is already closed.');
  const option = vote.options.find((o) => o.letter === letter);
  if (option?.status !== 'ok') throw new BadInputError(`Alternative ${letter} cannot be chosen.`);
  const previous = vote.ballots[userId];
  const ballots = { ...vote.ballots };
  if (previous === letter) {
    delete ballots[userId];
    return { vote: { ...vote, ballots }, change: 'removed' };
  }
  ballots[userId] = letter;
  return previous
    ? { vote: { ...vote, ballots }, change: 'moved', from: previous }
    : { vote: { ...vote, ballots }, change: 'added' };
}

/** The letter that has reached the quorum, if any. */
export function quorumReached(vote: Vote): string | undefined {
  for (const [letter, count] of tally(vote)) if (count >= vote.quorum) return letter;
  return undefined;
}

export function closeVote(vote: Vote, winner: string, closedBy: Vote['closedBy'], at: number): Vote {
  return { ...vote, status: 'closed', winner, closedBy, closedAt: at };
}
