import { describe, expect, it } from 'vitest';
import { createSlidingWindow } from '../src/sliding-window.ts';

/** A clock that only moves when told to: sleeps resolve once `advance` passes their time. */
function manualClock() {
  let now = 0;
  const sleepers: { at: number; wake: () => void }[] = [];
  return {
    now: () => now,
    sleep: (ms: number) => new Promise<void>((wake) => sleepers.push({ at: now + ms, wake })),
    async advance(ms: number) {
      await new Promise((r) => setImmediate(r));
      now += ms;
      for (const s of sleepers.filter((s) => s.at <= now)) {
        sleepers.splice(sleepers.indexOf(s), 1);
        s.wake();
      }
      await new Promise((r) => setImmediate(r));
    },
  };
}

describe('a sliding window of starts', () => {
  it('never lets more than the limit start in any window, across the seam a fixed window would have', async () => {
    const clock = manualClock();
    const window = createSlidingWindow(3, 1000, clock);
    const started: number[] = [];
    const ask = () => window.admit(10_000).then(() => started.push(clock.now()));
    // Three late in a second, three more just after it: a fixed window would let all six through within 200 ms.
    await clock.advance(900);
    void ask();
    void ask();
    void ask();
    await clock.advance(200);
    void ask();
    void ask();
    void ask();
    for (let i = 0; i < 30; i++) await clock.advance(100);
    expect(started).toEqual([900, 900, 900, 1900, 1900, 1900]);
    for (let i = 0; i < started.length; i++) {
      expect(started.filter((t) => t >= started[i]! && t < started[i]! + 1000).length).toBeLessThanOrEqual(3);
    }
  });

  it('answers how long to wait instead of queueing a caller whose slot is too far away', async () => {
    const clock = manualClock();
    const window = createSlidingWindow(2, 1000, clock);
    await window.admit(0);
    await window.admit(0);
    await expect(window.admit(500)).resolves.toEqual({ admitted: false, retryAfterMs: 1000 });
    await clock.advance(600);
    // The refused caller took no slot: the next one waits only until the first start leaves the window.
    const next = window.admit(500);
    await clock.advance(400);
    await expect(next).resolves.toEqual({ admitted: true });
  });
});
