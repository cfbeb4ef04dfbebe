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
  /** Largest change of a log-strength at which the fit stops. */
  tolerance = 1e-10,
): Map<string, number> {
  const index = new Map(keys.map((key, i) => [key, i]));
  const coded: number[] = [];
  for (const c of comparisons) {
    const w = index.get(c.winner);
    const l = index.get(c.loser);
    if (w !== undefined && l !== undefined) coded.push(w, l);
  }
  const logs = fitCounts(tallies(keys.length, [coded]), prior, tolerance);
  return new Map(keys.map((key, i) => [key, logs[i]!]));
}

/** Wins per entry and games per pair that were played (a sparse list: no pass over all n*n pairs). */
interface Tallies {
  n: number;
  wins: Float64Array;
  first: number[];
  second: number[];
  games: number[];
}

/** Adds up groups of coded comparisons (winner, loser, winner, loser, ... as entry numbers). */
function tallies(n: number, groups: readonly (readonly number[])[]): Tallies {
  const wins = new Float64Array(n);
  const slot = new Map<number, number>();
  const out: Tallies = { n, wins, first: [], second: [], games: [] };
  for (const group of groups) {
    for (let k = 0; k < group.length; k += 2) {
      const w = group[k]!;
      const l = group[k + 1]!;
      wins[w]! += 1;
      const pair = w < l ? w * n + l : l * n + w;
      const at = slot.get(pair);
      if (at === undefined) {
        slot.set(pair, out.games.length);
        out.first.push(Math.min(w, l));
        out.second.push(Math.max(w, l));
        out.games.push(1);
      } else out.games[at]! += 1;
    }
  }
  return out;
}

/** Hunter's MM iterations on tallies; log-strengths centred on their mean. */
function fitCounts(t: Tallies, prior: number, tolerance: number): number[] {
  const { n, wins, first, second, games } = t;
  let p = new Float64Array(n).fill(1);
  for (let iteration = 0; iteration < 10_000; iteration += 1) {
    const denominators = new Float64Array(n);
    for (let k = 0; k < games.length; k += 1) {
      const i = first[k]!;
      const j = second[k]!;
      const share = games[k]! / (p[i]! + p[j]!);
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
    } else {
      // The comparisons' likelihood does not change when every strength is scaled alike; only the prior's weak pull
      // fixes the scale, and MM alone crawls along it. Take the best scale at once: it solves sum sigmoid = n/2.
      const scale = Math.exp(bestShift(next));
      for (let i = 0; i < n; i += 1) next[i] = next[i]! * scale;
    }
    let change = 0;
    for (let i = 0; i < n; i += 1) change = Math.max(change, Math.abs(Math.log(next[i]!) - Math.log(p[i]!)));
    p = next;
    if (change < tolerance) break;
  }
  const logs = Array.from(p, (v) => Math.log(v));
  const mean = logs.reduce((sum, v) => sum + v, 0) / Math.max(n, 1);
  return logs.map((v) => v - mean);
}

/** The t with sum_i sigmoid(log p_i + t) = n/2 (Newton's method; the sum grows with t, so it converges). */
function bestShift(p: Float64Array): number {
  let t = 0;
  for (let step = 0; step < 50; step += 1) {
    let value = -p.length / 2;
    let slope = 0;
    for (const v of p) {
      const q = (v * Math.exp(t)) / (1 + v * Math.exp(t));
      value += q;
      slope += q * (1 - q);
    }
    if (slope === 0) break;
    const move = value / slope;
    t -= Math.max(-5, Math.min(5, move));
    if (Math.abs(move) < 1e-12) break;
  }
  return t;
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
  // Each vote's comparisons as entry numbers, once: a resample only adds up whole votes.
  const index = new Map(keys.map((key, i) => [key, i]));
  const byVote = new Map<number, number[]>();
  for (const c of comparisons) {
    const group = byVote.get(c.vote) ?? [];
    group.push(index.get(c.winner)!, index.get(c.loser)!);
    byVote.set(c.vote, group);
  }
  const groups = [...byVote.values()];
  const samples = keys.map(() => [] as number[]);
  const next = random(options.seed);
  for (let round = 0; round < options.rounds; round += 1) {
    const picked = Array.from({ length: groups.length }, () => groups[Math.floor(next() * groups.length)]!);
    // A looser stop for the resamples: 1e-7 in log-strength is 0.00002 points, far below what is shown.
    const fit = fitCounts(tallies(keys.length, picked), options.prior, 1e-7);
    for (const [i, value] of fit.entries()) samples[i]!.push(value);
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
      const sample = samples[index.get(key)!]!.sort((a, b) => a - b);
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
