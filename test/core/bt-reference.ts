import type { Comparison } from '../../src/core/leaderboard.ts';

/**
 * An independent reference: plain gradient ascent on the Bradley-Terry log-likelihood (with the same prior of
 * half-won, half-lost games against a fixed opponent of strength 1), in log-strengths.
 */
export function reference(keys: string[], comparisons: Comparison[], prior: number): Map<string, number> {
  const theta = new Map(keys.map((k) => [k, 0]));
  const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
  for (let step = 0; step < 20_000; step += 1) {
    const gradient = new Map(keys.map((k) => [k, 0]));
    for (const c of comparisons) {
      const p = sigmoid(theta.get(c.winner)! - theta.get(c.loser)!);
      gradient.set(c.winner, gradient.get(c.winner)! + (1 - p));
      gradient.set(c.loser, gradient.get(c.loser)! - (1 - p));
    }
    for (const k of keys) {
      const p = sigmoid(theta.get(k)!);
      gradient.set(k, gradient.get(k)! + prior / 2 - prior * p);
      theta.set(k, theta.get(k)! + 0.05 * gradient.get(k)!);
    }
    if (prior === 0) {
      const mean = keys.reduce((s, k) => s + theta.get(k)!, 0) / keys.length;
      for (const k of keys) theta.set(k, theta.get(k)! - mean);
    }
  }
  const mean = keys.reduce((s, k) => s + theta.get(k)!, 0) / keys.length;
  return new Map(keys.map((k) => [k, theta.get(k)! - mean]));
}
