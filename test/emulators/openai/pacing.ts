/** Token pacing with timers: wait `firstTokenMs`, then emit steps at `tokensPerSecond` (no busy loops). */
import { performance } from 'node:perf_hooks';

export interface Latency {
  firstTokenMs: number;
  tokensPerSecond: number;
}

export function normalizeLatency(
  l: { firstTokenMs?: number; tokensPerSecond?: number } | undefined,
): Latency {
  const first = l?.firstTokenMs ?? 0;
  const tps = l?.tokensPerSecond ?? Number.POSITIVE_INFINITY;
  return {
    firstTokenMs: Number.isFinite(first) && first > 0 ? first : 0,
    tokensPerSecond: tps > 0 ? tps : Number.POSITIVE_INFINITY,
  };
}

/**
 * Calls `onStep(i)` for i = 0..steps-1: step 0 after `firstTokenMs`, step i at `firstTokenMs + i / tokensPerSecond`.
 * Steps already due are emitted together when a timer fires. Resolves true when all ran, false when aborted.
 */
export function pace(
  steps: number,
  latency: Latency,
  onStep: (i: number) => void,
  signal: AbortSignal,
): Promise<boolean> {
  const start = performance.now();
  const interval = Number.isFinite(latency.tokensPerSecond) ? 1000 / latency.tokensPerSecond : 0;
  const dueAt = (i: number) => start + latency.firstTokenMs + i * interval;
  return new Promise<boolean>((resolve) => {
    let next = 0;
    let timer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      if (timer) clearTimeout(timer);
      resolve(false);
    };
    if (signal.aborted) {
      resolve(false);
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    const tick = () => {
      timer = undefined;
      const now = performance.now();
      // A step is due when its time has come (with 1 ms of slack for timer granularity).
      while (next < steps && dueAt(next) <= now + 1) {
        if (signal.aborted) return;
        onStep(next);
        next++;
      }
      if (signal.aborted) return;
      if (next >= steps && now + 1 >= dueAt(0)) {
        signal.removeEventListener('abort', onAbort);
        resolve(true);
        return;
      }
      const wait = Math.max(0, (next < steps ? dueAt(next) : dueAt(0)) - performance.now());
      timer = setTimeout(tick, wait);
    };
    tick();
  });
}
