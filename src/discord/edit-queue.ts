/** A cancellable timer; the queue never holds more than one. */
export interface Timer {
  cancel(): void;
}

/** How an edit queue paces its runs, and the clock it reads (injected in tests). */
export interface EditQueueOptions {
  /** Most run starts allowed within any `windowMs` (Discord allows about 5 message edits per 5 s per channel). */
  limit: number;
  windowMs: number;
  /**
   * Least time between two starts (default 0). Spacing edits evenly keeps a streaming reply moving, where a burst
   * would spend the whole budget in a moment and then show nothing until the window passes.
   */
  spacingMs?: number;
  /** Monotonic milliseconds; defaults to `performance.now`. */
  now?: () => number;
  /** Defaults to `setTimeout`. */
  setTimer?: (fn: () => void, ms: number) => Timer;
}

/**
 * Runs message edits one at a time, at most `limit` starts within any sliding window of `windowMs`, serving the
 * key (message) that has waited longest first.
 */
export interface EditQueue {
  /**
   * Schedules `run` as the latest content for `key`. A pending (not yet started) run for the same key is replaced,
   * so intermediate states are merged rather than each costing an edit; the key keeps its place in line. The promise
   * resolves once a run for this key scheduled at or after this call has finished (so the latest content is
   * visible), and rejects if that run throws. A run that finds nothing to edit resolves to `'skipped'`, which gives
   * its start back to the budget.
   */
  schedule(key: string, run: () => Promise<void | 'skipped'>): Promise<void>;
  /** Pending runs count (for tests/metrics). */
  readonly pending: number;
}

/** One edit queue per channel, so that all messages of a thread share their channel's edit budget. */
export interface EditQueues {
  /**
   * The queue of a channel, created on first use. Queues that are idle and whose rate window has passed are
   * dropped, so memory does not grow with the number of threads; a returned queue stays usable after that.
   */
  forChannel(channelId: string): EditQueue;
  /** Channels with a live queue (for tests/metrics). */
  readonly size: number;
}

interface Pending {
  run: () => Promise<void | 'skipped'>;
  readonly waiters: Array<{ resolve: () => void; reject: (error: unknown) => void }>;
}

/** Creates a single edit queue; see {@link EditQueue}. */
export function createEditQueue(options: EditQueueOptions): EditQueue {
  return createQueue(options, undefined);
}

/** Creates the per-channel edit queues of the bot; see {@link EditQueues}. */
export function createEditQueues(options: EditQueueOptions): EditQueues {
  validate(options);
  const queues = new Map<string, EditQueue>();
  const live = (channelId: string): EditQueue => {
    let queue = queues.get(channelId);
    if (queue === undefined) {
      const created = createQueue(options, () => {
        if (queues.get(channelId) === created) queues.delete(channelId);
      });
      queues.set(channelId, created);
      queue = created;
    }
    return queue;
  };
  return {
    forChannel(channelId) {
      // A handle rather than the queue itself: a caller keeping it across a drop must reach the channel's current
      // queue, or two queues would share one channel's budget and exceed it together.
      return {
        schedule: (key, run) => live(channelId).schedule(key, run),
        get pending() {
          return queues.get(channelId)?.pending ?? 0;
        },
      };
    },
    get size() {
      return queues.size;
    },
  };
}

function createQueue(options: EditQueueOptions, onDrained: (() => void) | undefined): EditQueue {
  validate(options);
  const { limit, windowMs, spacingMs = 0 } = options;
  const now = options.now ?? (() => performance.now());
  const startTimer = (fn: () => void, ms: number, background: boolean): Timer => {
    if (options.setTimer !== undefined) return options.setTimer(fn, ms);
    const handle = setTimeout(fn, ms);
    // Waiting only to forget an idle queue must not keep the process alive.
    if (background) handle.unref();
    return { cancel: () => clearTimeout(handle) };
  };

  // Map order is arrival order, and replacing a key's run keeps its entry in place: the oldest waiter goes first.
  const pending = new Map<string, Pending>();
  // Start times of the last `limit` runs, oldest first.
  const starts: number[] = [];
  let running = false;
  let timer: { readonly kind: 'rate' | 'idle'; readonly handle: Timer } | undefined;

  const cancelTimer = (): void => {
    timer?.handle.cancel();
    timer = undefined;
  };

  const waitForRate = (): number => {
    const oldest = starts[0];
    const last = starts[starts.length - 1];
    const windowWait = starts.length < limit || oldest === undefined ? 0 : oldest + windowMs - now();
    const spacingWait = last === undefined ? 0 : last + spacingMs - now();
    return Math.max(windowWait, spacingWait);
  };

  const armIdleTimer = (): void => {
    if (onDrained === undefined || timer !== undefined) return;
    const last = starts[starts.length - 1];
    // Dropping the queue while its recent starts still count would let a fresh queue exceed the channel's budget.
    const wait = last === undefined ? 0 : last + windowMs - now();
    if (wait <= 0) {
      onDrained();
      return;
    }
    timer = {
      kind: 'idle',
      handle: startTimer(
        () => {
          timer = undefined;
          pump();
        },
        wait,
        true,
      ),
    };
  };

  const start = (key: string, next: Pending): void => {
    pending.delete(key);
    running = true;
    const startedAt = now();
    starts.push(startedAt);
    if (starts.length > limit) starts.shift();
    let result: Promise<void | 'skipped'>;
    try {
      result = Promise.resolve(next.run());
    } catch (error) {
      result = Promise.reject(error);
    }
    result
      .then(
        (outcome) => {
          if (outcome === 'skipped') {
            const index = starts.lastIndexOf(startedAt);
            if (index >= 0) starts.splice(index, 1);
          }
          for (const waiter of next.waiters) waiter.resolve();
        },
        (error: unknown) => {
          for (const waiter of next.waiters) waiter.reject(error);
        },
      )
      .finally(() => {
        running = false;
        pump();
      });
  };

  const pump = (): void => {
    if (running) return;
    const first = pending.entries().next();
    if (first.done) {
      armIdleTimer();
      return;
    }
    const wait = waitForRate();
    if (wait > 0) {
      if (timer?.kind !== 'rate') {
        cancelTimer();
        timer = {
          kind: 'rate',
          handle: startTimer(
            () => {
              timer = undefined;
              pump();
            },
            wait,
            false,
          ),
        };
      }
      return;
    }
    cancelTimer();
    const [key, next] = first.value;
    start(key, next);
  };

  return {
    schedule(key, run) {
      return new Promise<void>((resolve, reject) => {
        const entry = pending.get(key);
        if (entry === undefined) pending.set(key, { run, waiters: [{ resolve, reject }] });
        else {
          entry.run = run;
          entry.waiters.push({ resolve, reject });
        }
        pump();
      });
    },
    get pending() {
      return pending.size;
    },
  };
}

function validate({ limit, windowMs }: EditQueueOptions): void {
  if (!Number.isInteger(limit) || limit < 1)
    throw new RangeError(`limit must be a positive integer, got ${limit}`);
  if (!(windowMs >= 0)) throw new RangeError(`windowMs must be a non-negative number, got ${windowMs}`);
}
