/**
 * A per-server leaderboard from the group's votes, as Chatbot Arena rates models: every applied vote with a winner is
 * a set of pairwise preferences (the winner over each other alternative that finished), fitted by a Bradley-Terry
 * model; 95% intervals come from a bootstrap over votes (a vote's comparisons are resampled together, since they
 * share one group's judgement). Pure functions: the Discord layer draws the table and the chart.
 */

/** What is rated: models, styles, or (model, style) pairs. */
export type LeaderboardBy = 'model' | 'style' | 'both';

/** One alternative of a recorded vote, reduced to what the rating needs. */
export interface RatedOption {
  model: string;
  style: string | undefined;
}

/** One applied vote: its winner and the alternatives that lost to it. */
export interface RatedVote {
  winner: RatedOption;
  losers: readonly RatedOption[];
}

/** A preference: `winner` was chosen over `loser` in vote number `vote`. */
export interface Comparison {
  winner: string;
  loser: string;
  vote: number;
}

export interface Rating {
  key: string;
  /** On the Elo-like scale Chatbot Arena uses: 400 points is a 10:1 odds of being preferred; the mean is 1000. */
  rating: number;
  /** The 95% bootstrap interval. */
  low: number;
  high: number;
  /** Pairwise comparisons this entry took part in, and how many it won. */
  comparisons: number;
  wins: number;
}

export interface LeaderboardOptions {
  /** Entries with fewer comparisons are fitted but not shown. */
  minComparisons: number;
  /** Bootstrap rounds for the interval (0: the interval is the rating itself). */
  rounds: number;
  /** A seed, so the same votes always give the same interval. */
  seed: number;
  /**
   * Pseudo-games each entry plays (half won, half lost) against a fixed opponent of average strength, so an entry
   * that never lost (or never won) gets a finite rating; 0 gives the plain maximum-likelihood fit.
   */
  prior: number;
}

export const DEFAULT_LEADERBOARD: LeaderboardOptions = { minComparisons: 5, rounds: 200, seed: 1, prior: 1 };

const SCALE = 400 / Math.LN10;
const BASE = 1000;
/** The name of the option without a style, as people see it. */
export const PLAIN_STYLE = 'plain';

export function keyOf(option: RatedOption, by: LeaderboardBy): string {
  const style = option.style ?? PLAIN_STYLE;
  if (by === 'model') return option.model;
  if (by === 'style') return style;
  return `${option.model} · ${style}`;
}

/** The winner over each loser, skipping pairs that are the same entry under `by` (nothing to learn from them). */
export function comparisonsOf(votes: readonly RatedVote[], by: LeaderboardBy): Comparison[] {
  const out: Comparison[] = [];
  votes.forEach((vote, index) => {
    const winner = keyOf(vote.winner, by);
    for (const loser of vote.losers) {
      const key = keyOf(loser, by);
      if (key !== winner) out.push({ winner, loser: key, vote: index });
    }
  });
  return out;
}

/**
 * Bradley-Terry strengths by Hunter's MM algorithm (each step raises the likelihood): p_i = W_i / sum_j n_ij/(p_i+p_j),
 * with the prior's pseudo-games against an opponent of strength 1. Returns log-strengths, centred on their mean.
 */
export function fitBradleyTerry(
  keys: readonly string[],
  comparisons: readonly Comparison[],
  prior: number,
): Map<string, number> {
  const index = new Map(keys.map((key, i) => [key, i]));
  const n = keys.length;
  const wins = new Float64Array(n);
  // Games per pair, as a sparse list: user-grown data, so no n*n matrix.
  const pairs = new Map<number, number>();
  for (const c of comparisons) {
    const w = index.get(c.winner);
    const l = index.get(c.loser);
    if (w === undefined || l === undefined) continue;
    wins[w]! += 1;
    const pair = w < l ? w * n + l : l * n + w;
    pairs.set(pair, (pairs.get(pair) ?? 0) + 1);
  }
  let p = new Float64Array(n).fill(1);
  for (let iteration = 0; iteration < 10_000; iteration += 1) {
    const denominators = new Float64Array(n);
    for (const [pair, games] of pairs) {
      const i = Math.floor(pair / n);
      const j = pair % n;
      const share = games / (p[i]! + p[j]!);
      denominators[i]! += share;
      denominators[j]! += share;
    }
    const next = new Float64Array(n);
    for (let i = 0; i < n; i += 1) {
      const numerator = wins[i]! + prior / 2;
      const denominator = denominators[i]! + prior / (p[i]! + 1);
      // An entry without wins and without a prior tends to strength 0; keep it tiny rather than log(0).
      next[i] = denominator > 0 ? Math.max(numerator / denominator, 1e-12) : 1;
    }
    if (prior === 0) {
      // Without the fixed opponent the scale is free: pin the geometric mean to 1.
      const mean = next.reduce((sum, v) => sum + Math.log(v), 0) / Math.max(n, 1);
      for (let i = 0; i < n; i += 1) next[i] = next[i]! / Math.exp(mean);
    }
    let change = 0;
    for (let i = 0; i < n; i += 1) change = Math.max(change, Math.abs(Math.log(next[i]!) - Math.log(p[i]!)));
    p = next;
    if (change < 1e-10) break;
  }
  const logs = Array.from(p, (v) => Math.log(v));
  const mean = logs.reduce((sum, v) => sum + v, 0) / Math.max(n, 1);
  return new Map(keys.map((key, i) => [key, logs[i]! - mean]));
}

/** A small deterministic generator (mulberry32): the bootstrap must give the same interval for the same votes. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const position = (sorted.length - 1) * q;
  const below = Math.floor(position);
  const above = Math.ceil(position);
  return sorted[below]! + (sorted[above]! - sorted[below]!) * (position - below);
}

/** Ratings, best first, of the entries with enough comparisons. */
export function leaderboard(
  votes: readonly RatedVote[],
  by: LeaderboardBy,
  options: LeaderboardOptions = DEFAULT_LEADERBOARD,
): Rating[] {
  const comparisons = comparisonsOf(votes, by);
  const keys = [...new Set(comparisons.flatMap((c) => [c.winner, c.loser]))].sort();
  if (keys.length === 0) return [];
  const fitted = fitBradleyTerry(keys, comparisons, options.prior);
  const byVote = new Map<number, Comparison[]>();
  for (const c of comparisons) byVote.set(c.vote, [...(byVote.get(c.vote) ?? []), c]);
  const groups = [...byVote.values()];
  const samples = new Map(keys.map((key) => [key, [] as number[]]));
  const next = random(options.seed);
  for (let round = 0; round < options.rounds; round += 1) {
    const resampled: Comparison[] = [];
    for (let i = 0; i < groups.length; i += 1) resampled.push(...groups[Math.floor(next() * groups.length)]!);
    const fit = fitBradleyTerry(keys, resampled, options.prior);
    for (const key of keys) samples.get(key)!.push(fit.get(key)!);
  }
  const counts = new Map(keys.map((key) => [key, { comparisons: 0, wins: 0 }]));
  for (const c of comparisons) {
    counts.get(c.winner)!.comparisons += 1;
    counts.get(c.winner)!.wins += 1;
    counts.get(c.loser)!.comparisons += 1;
  }
  return keys
    .map((key) => {
      const rating = BASE + SCALE * fitted.get(key)!;
      const sample = samples.get(key)!.sort((a, b) => a - b);
      const { comparisons: played, wins } = counts.get(key)!;
      return {
        key,
        rating,
        low: sample.length > 0 ? BASE + SCALE * quantile(sample, 0.025) : rating,
        high: sample.length > 0 ? BASE + SCALE * quantile(sample, 0.975) : rating,
        comparisons: played,
        wins,
      };
    })
    .filter((entry) => entry.comparisons >= options.minComparisons)
    .sort((a, b) => b.rating - a.rating || a.key.localeCompare(b.key));
}
