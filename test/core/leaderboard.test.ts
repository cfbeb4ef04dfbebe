import { describe, expect, it } from 'vitest';
import {
  type Comparison,
  comparisonsOf,
  fitBradleyTerry,
  leaderboard,
  type RatedVote,
} from '../../src/core/leaderboard.ts';
import { reference } from './bt-reference.ts';

const games = (winner: string, loser: string, times: number, from = 0): Comparison[] =>
  Array.from({ length: times }, (_, i) => ({ winner, loser, vote: from + i }));

describe('Bradley-Terry fit', () => {
  it('gives the hand-solved odds for two entries: 3 wins to 1 is 400*log10(3) points apart', () => {
    const fit = fitBradleyTerry(['a', 'b'], [...games('a', 'b', 3), ...games('b', 'a', 1, 3)], 0);
    const gap = (400 / Math.LN10) * (fit.get('a')! - fit.get('b')!);
    expect(gap).toBeCloseTo(400 * Math.log10(3), 6);
  });

  it('matches an independent gradient-ascent fit on a small cyclic dataset, with and without the prior', () => {
    const keys = ['gpt', 'llama', 'mistral', 'qwen'];
    const data = [
      ...games('gpt', 'llama', 7),
      ...games('llama', 'gpt', 3),
      ...games('llama', 'mistral', 6),
      ...games('mistral', 'llama', 4),
      ...games('mistral', 'gpt', 2),
      ...games('gpt', 'mistral', 5),
      ...games('qwen', 'gpt', 4),
      ...games('gpt', 'qwen', 4),
      ...games('qwen', 'mistral', 1),
      ...games('mistral', 'qwen', 2),
    ];
    for (const prior of [0, 1]) {
      const ours = fitBradleyTerry(keys, data, prior);
      const theirs = reference(keys, data, prior);
      for (const key of keys) expect(ours.get(key)!).toBeCloseTo(theirs.get(key)!, 4);
    }
  });

  it('keeps an entry that never lost finite with the prior', () => {
    const fit = fitBradleyTerry(['a', 'b'], games('a', 'b', 5), 1);
    expect(Number.isFinite(fit.get('a')!)).toBe(true);
    expect(fit.get('a')!).toBeGreaterThan(fit.get('b')!);
  });
});

describe('leaderboard', () => {
  const vote = (
    winner: [string, (string | undefined)?],
    ...losers: [string, (string | undefined)?][]
  ): RatedVote => ({
    winner: { model: winner[0], style: winner[1] },
    losers: losers.map(([model, style]) => ({ model, style })),
  });

  it('turns a vote into the winner over each other alternative, skipping pairs of the same entry', () => {
    const comparisons = comparisonsOf([vote(['m1', 'terse'], ['m1', 'warm'], ['m2', 'terse'])], 'model');
    expect(comparisons).toEqual([{ winner: 'm1', loser: 'm2', vote: 0 }]);
    expect(comparisonsOf([vote(['m1', 'terse'], ['m1', undefined])], 'style')).toEqual([
      { winner: 'terse', loser: 'plain', vote: 0 },
    ]);
    expect(comparisonsOf([vote(['m1', 'terse'], ['m1', undefined])], 'both')).toEqual([
      { winner: 'm1 · terse', loser: 'm1 · plain', vote: 0 },
    ]);
  });

  it('ranks by rating, hides entries with few comparisons, and the interval holds the rating', () => {
    const votes = [
      ...Array.from({ length: 8 }, () => vote(['strong'], ['weak'])),
      ...Array.from({ length: 2 }, () => vote(['weak'], ['strong'])),
      vote(['rare'], ['weak']),
    ];
    const board = leaderboard(votes, 'model', { minComparisons: 5, rounds: 100, seed: 7, prior: 1 });
    expect(board.map((r) => r.key)).toEqual(['strong', 'weak']);
    expect(board[0]).toMatchObject({ comparisons: 10, wins: 8 });
    for (const r of board) {
      expect(r.low).toBeLessThanOrEqual(r.rating + 1e-9);
      expect(r.high).toBeGreaterThanOrEqual(r.rating - 1e-9);
    }
    // Same votes, same seed: the same interval.
    expect(leaderboard(votes, 'model', { minComparisons: 5, rounds: 100, seed: 7, prior: 1 })).toEqual(board);
  });
});
