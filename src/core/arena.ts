import { createHash, randomBytes } from 'node:crypto';
import type { ArenaLog, VoteOutcome } from './arena-log.ts';
import { ratedVote } from './arena-log.ts';
import { DEFAULT_LEADERBOARD, type LeaderboardBy, leaderboard, type Rating } from './leaderboard.ts';
import type { Clock, Store } from './ports.ts';

export type LeaderboardPeriod = 'week' | 'month' | 'all';

const DAY_MS = 24 * 60 * 60 * 1000;
const PERIOD_MS: Record<LeaderboardPeriod, number> = { week: 7 * DAY_MS, month: 30 * DAY_MS, all: Infinity };
const SALT_KEY = 'arena:export-salt';

export interface LeaderboardResult {
  ratings: Rating[];
  /** Applied votes recorded in the period. */
  votes: number;
}

/** One row of `/export votes`: a preference pair with its context, in the shape reward-model datasets use. */
export interface ExportRow {
  vote_id: string;
  closed_at: string;
  context: { role: 'user' | 'assistant'; text: string }[];
  prompt: string | null;
  chosen: { letter: string; model: string; style: string | null; text: string; votes: number };
  rejected: { letter: string; model: string; style: string | null; text: string; votes: number };
  total_votes: number;
  /** Salted hashes of who voted for the chosen and for the rejected alternative. */
  voters_chosen: string[];
  voters_rejected: string[];
}

/** The server's leaderboard and its preference data, from the votes recorded by the arena log. */
export interface ArenaService {
  leaderboard(guildId: string, by: LeaderboardBy, period: LeaderboardPeriod): Promise<LeaderboardResult>;
  /** Every recorded preference of the server, one row per (winner, other alternative), voters hashed. */
  exportRows(guildId: string): Promise<ExportRow[]>;
}

export function createArenaService(deps: {
  arena: ArenaLog;
  store: Store;
  clock: Clock;
  /** EXPORT_SALT; without it a random salt is made once and kept in the store. */
  salt: string | undefined;
}): ArenaService {
  const { arena, store, clock } = deps;

  async function salt(): Promise<string> {
    if (deps.salt) return deps.salt;
    // Set once: the update keeps a salt another process stored first, so hashes stay comparable across exports.
    const stored = await store.update<string>(
      SALT_KEY,
      (current) => current ?? randomBytes(32).toString('hex'),
    );
    return stored!;
  }

  return {
    async leaderboard(guildId, by, period) {
      const since = period === 'all' ? 0 : clock.now() - PERIOD_MS[period];
      const outcomes = await arena.read(guildId, since);
      const votes = outcomes.flatMap((outcome) => ratedVote(outcome) ?? []);
      return { ratings: leaderboard(votes, by, DEFAULT_LEADERBOARD), votes: outcomes.length };
    },

    async exportRows(guildId) {
      const secret = await salt();
      const hash = (userId: string) =>
        createHash('sha256').update(`${secret}:${userId}`).digest('hex').slice(0, 16);
      return (await arena.read(guildId)).flatMap((outcome) => rowsOf(outcome, hash));
    },
  };
}

function rowsOf(outcome: VoteOutcome, hash: (userId: string) => string): ExportRow[] {
  const chosen = outcome.options.find((o) => o.letter === outcome.winner);
  if (!chosen) return [];
  const votersOf = (letter: string) =>
    outcome.ballots
      .filter((b) => b.letter === letter)
      .map((b) => hash(b.userId))
      .sort();
  const side = (o: (typeof outcome.options)[number]) => ({
    letter: o.letter,
    model: o.model,
    style: o.style ?? null,
    text: o.text,
    votes: o.votes,
  });
  return outcome.options
    .filter((o) => o.letter !== outcome.winner)
    .map((rejected) => ({
      vote_id: outcome.voteId,
      closed_at: new Date(outcome.closedAt).toISOString(),
      context: outcome.context,
      prompt: outcome.prompt ?? null,
      chosen: side(chosen),
      rejected: side(rejected),
      total_votes: outcome.ballots.length,
      voters_chosen: votersOf(chosen.letter),
      voters_rejected: votersOf(rejected.letter),
    }));
}
