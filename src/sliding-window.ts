/**
 * Admits at most `limit` starts in any window of `windowMs`, first come first served: each caller waits for its slot.
 * Discord counts its global limit over a second of its own, which a fixed window of ours never lines up with (45 at
 * the end of our second and 45 at the start of the next fall in one of Discord's); over any sliding second there is
 * no such seam.
 */
export interface SlidingWindow {
  /**
   * Resolves when the caller may start, or with the milliseconds to wait when its slot is further away than
   * `maxWaitMs` (it then takes no slot).
   */
  admit(maxWaitMs: number): Promise<{ admitted: true } | { admitted: false; retryAfterMs: number }>;
}

export function createSlidingWindow(
  limit: number,
  windowMs: number,
  clock: { now(): number; sleep(ms: number): Promise<void> } = {
    now: () => performance.now(),
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  },
): SlidingWindow {
  /** The start times given out, oldest first: past ones and the reserved slots of callers still waiting. */
  const starts: number[] = [];
  return {
    async admit(maxWaitMs) {
      const now = clock.now();
      while (starts.length > 0 && starts[0]! <= now - windowMs) starts.shift();
      // The slot: now, or once the start `limit` places back has left the window.
      const slot = starts.length < limit ? now : Math.max(now, starts[starts.length - limit]! + windowMs);
      if (slot - now > maxWaitMs) return { admitted: false, retryAfterMs: Math.ceil(slot - now) };
      starts.push(slot);
      if (slot > now) await clock.sleep(slot - now);
      return { admitted: true };
    },
  };
}
