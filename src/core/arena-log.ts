import type { HistoryLog } from './history-log.ts';
import type { RatedVote } from './leaderboard.ts';
import { branchOf, type Item, type ThreadSession, type Vote } from './model.ts';
import type { Store } from './ports.ts';
import { tally } from './votes.ts';

/**
 * Outcomes per stored chunk: appending rewrites one record, however many votes a server has had. An outcome holds up
 * to 4 context items and 5 alternatives of at most 4000 characters, so 16 keep a chunk under about 600 kB at worst.
 */
export const OUTCOMES_PER_CHUNK = 16;
/** History items before the fork kept as the context the alternatives answered. */
export const CONTEXT_ITEMS = 4;
/** Longest text kept per item or alternative: the log is for ratings and export, not a second history. */
export const MAX_TEXT = 4000;

/** One alternative of an applied vote, as the leaderboard and the export need it. */
export interface OutcomeOption {
  letter: string;
  model: string;
  style: string | undefined;
  text: string;
  votes: number;
}

/** An applied vote with a winner: the group's preference among alternatives that finished. */
export interface VoteOutcome {
  voteId: string;
  threadId: string;
  closedAt: number;
  /** The history items just before the fork (oldest first), as the model saw them. */
  context: { role: 'user' | 'assistant'; text: string }[];
  /** The user message the alternatives answered, when it was not already the last context item. */
  prompt: string | undefined;
  winner: string;
  options: OutcomeOption[];
  /** Who voted for which letter; user ids stay in the store and are hashed on export. */
  ballots: { userId: string; letter: string }[];
}

interface OutcomeChunk {
  version: 1;
  /** Sparse: a slot whose writer died between reserving and writing stays empty. */
  outcomes: (VoteOutcome | null)[];
}

const countKey = (guildId: string) => `arena:${guildId}:count`;
const chunkKey = (guildId: string, chunk: number) => `arena:${guildId}:${chunk}`;
const clip = (text: string) => (text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT)}…` : text);

/** The per-server log of applied votes, append-only in bounded chunks. */
export interface ArenaLog {
  append(guildId: string, outcome: VoteOutcome): Promise<void>;
  /** Outcomes closed at or after `since`, oldest first. */
  read(guildId: string, since?: number): Promise<VoteOutcome[]>;
}

export function createArenaLog(store: Store): ArenaLog {
  return {
    async append(guildId, outcome) {
      // Reserve a slot first (atomic), then fill it: two votes closing at once never share a slot.
      const count = await store.update<number>(countKey(guildId), (n) => (n ?? 0) + 1);
      const index = (count ?? 1) - 1;
      const chunk = Math.floor(index / OUTCOMES_PER_CHUNK);
      await store.update<OutcomeChunk>(chunkKey(guildId, chunk), (current) => {
        const outcomes = [...(current?.outcomes ?? [])];
        while (outcomes.length < index - chunk * OUTCOMES_PER_CHUNK) outcomes.push(null);
        outcomes[index - chunk * OUTCOMES_PER_CHUNK] = outcome;
        return { version: 1, outcomes };
      });
    },

    async read(guildId, since = 0) {
      const count = (await store.get<number>(countKey(guildId))) ?? 0;
      const chunks = Math.ceil(count / OUTCOMES_PER_CHUNK);
      const out: VoteOutcome[] = [];
      // Sequential: a server's log may be long, and the store is shared with every thread's turns.
      for (let chunk = 0; chunk < chunks; chunk += 1) {
        const stored = await store.get<OutcomeChunk>(chunkKey(guildId, chunk));
        for (const outcome of stored?.outcomes ?? [])
          if (outcome && outcome.closedAt >= since) out.push(outcome);
      }
      return out;
    },
  };
}

/**
 * What an applied vote leaves for the leaderboard: undefined when there is nothing to compare (no winner among
 * alternatives that finished, or fewer than two of them). Reads each alternative's reply from its branch.
 */
export async function outcomeOf(
  session: ThreadSession,
  vote: Vote,
  log: HistoryLog,
): Promise<VoteOutcome | undefined> {
  const ok = vote.options.filter((o) => o.status === 'ok' && branchOf(session, o.branchId) !== undefined);
  const winner = vote.winner;
  if (ok.length < 2 || winner === undefined || !ok.some((o) => o.letter === winner)) return undefined;
  const counts = tally(vote);
  const from = Math.max(0, vote.forkPoint - CONTEXT_ITEMS);
  let context: Item[] = [];
  let prompt: string | undefined;
  const options: OutcomeOption[] = [];
  for (const option of ok) {
    // Each alternative's history is the shared part up to the fork, then its own items (a prompt, its reply).
    const items = await log.view(session, option.branchId!).read(from);
    const own = items.slice(vote.forkPoint - from);
    if (option.letter === winner) context = items.slice(0, vote.forkPoint - from);
    prompt ??= own.find((item) => item.role === 'user')?.text;
    options.push({
      letter: option.letter,
      model: option.model ?? session.settings.model,
      style: option.style,
      text: clip(own.findLast((item) => item.role === 'assistant')?.text ?? ''),
      votes: counts.get(option.letter) ?? 0,
    });
  }
  return {
    voteId: vote.id,
    threadId: session.threadId,
    closedAt: vote.closedAt ?? vote.createdAt,
    context: context.map((item) => ({ role: item.role, text: clip(item.text) })),
    prompt: prompt === undefined ? undefined : clip(prompt),
    winner,
    options,
    ballots: Object.entries(vote.ballots).map(([userId, letter]) => ({ userId, letter })),
  };
}

/** The leaderboard's view of an outcome: the winner over every other alternative. */
export function ratedVote(outcome: VoteOutcome): RatedVote | undefined {
  const winner = outcome.options.find((o) => o.letter === outcome.winner);
  if (!winner) return undefined;
  return { winner, losers: outcome.options.filter((o) => o.letter !== outcome.winner) };
}
