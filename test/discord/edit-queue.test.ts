import { describe, expect, it } from 'vitest';
import { createEditQueue, createEditQueues, type Timer } from '../../src/discord/edit-queue.ts';

/** Lets every promise callback that is ready run (one macrotask turn; no time passes). */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A manual clock: time moves only through `advance`, firing due timers in order. */
function createFakeClock() {
  let time = 0;
  const timers = new Set<{ at: number; fn: () => void }>();
  const setTimer = (fn: () => void, ms: number): Timer => {
    const timer = { at: time + ms, fn };
    timers.add(timer);
    return { cancel: () => timers.delete(timer) };
  };
  return {
    now: () => time,
    setTimer,
    /** A run that takes `ms` of fake time, like a REST call. */
    sleep: (ms: number) => new Promise<void>((resolve) => setTimer(resolve, ms)),
    async advance(ms: number): Promise<void> {
      const target = time + ms;
      for (;;) {
        await settle();
        let due: { at: number; fn: () => void } | undefined;
        for (const timer of timers) if (timer.at <= target && (!due || timer.at < due.at)) due = timer;
        if (due === undefined) break;
        timers.delete(due);
        time = Math.max(time, due.at);
        due.fn();
      }
      time = target;
      await settle();
    },
  };
}

type FakeClock = ReturnType<typeof createFakeClock>;

/** The queue's own timers, counted apart from the runs' sleeps. */
function queueTimers(clock: FakeClock) {
  let live = 0;
  let most = 0;
  return {
    setTimer(fn: () => void, ms: number): Timer {
      live++;
      most = Math.max(most, live);
      let done = false;
      const finish = () => {
        if (!done) live--;
        done = true;
      };
      const timer = clock.setTimer(() => {
        finish();
        fn();
      }, ms);
      return {
        cancel: () => {
          finish();
          timer.cancel();
        },
      };
    },
    get most() {
      return most;
    },
  };
}

/** Asserts the sliding-window bound: no `limit + 1` starts within `windowMs`. */
function expectRateBound(starts: readonly number[], limit: number, windowMs: number): void {
  for (let i = 0; i + limit < starts.length; i++) {
    expect((starts[i + limit] ?? 0) - (starts[i] ?? 0)).toBeGreaterThanOrEqual(windowMs);
  }
}

function deferred() {
  let resolve!: () => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const options = (clock: FakeClock) => ({
  limit: 5,
  windowMs: 5000,
  now: clock.now,
  setTimer: clock.setTimer,
});

describe('createEditQueue', () => {
  it('runs an edit at once while the budget allows', async () => {
    const clock = createFakeClock();
    const queue = createEditQueue(options(clock));
    const ran: string[] = [];
    const done = queue.schedule('m1', async () => {
      ran.push('m1');
    });
    await settle();
    expect(ran).toEqual(['m1']);
    await expect(done).resolves.toBeUndefined();
  });

  it('spaces edits evenly when asked, instead of spending the budget in a burst', async () => {
    const clock = createFakeClock();
    const queue = createEditQueue({ ...options(clock), limit: 4, spacingMs: 1250 });
    const startedAt: number[] = [];
    for (const key of ['a', 'b', 'c']) {
      void queue.schedule(key, async () => {
        startedAt.push(clock.now());
      });
    }
    await settle();
    await clock.advance(3000);
    expect(startedAt.map((t) => t - startedAt[0]!)).toEqual([0, 1250, 2500]);
  });

  it('gives a skipped run its start back', async () => {
    const clock = createFakeClock();
    const queue = createEditQueue({ ...options(clock), limit: 1 });
    await queue.schedule('a', async () => 'skipped' as const);
    const ran: string[] = [];
    await queue.schedule('b', async () => {
      ran.push('b');
    });
    expect(ran).toEqual(['b']);
  });

  it('merges many updates of one message into few edits, each caller seeing the latest content', async () => {
    const clock = createFakeClock();
    const queue = createEditQueue(options(clock));
    const shown: number[] = [];
    const edit = (content: number) => async () => {
      await clock.sleep(100);
      shown.push(content);
    };
    const settled: number[] = [];
    const calls = Array.from({ length: 100 }, (_, i) =>
      queue.schedule('m1', edit(i + 1)).then(() => settled.push(i + 1)),
    );
    expect(queue.pending).toBe(1);
    await clock.advance(100);
    expect(shown).toEqual([1]);
    // Only the first caller's content is visible yet; the others wait for the merged run.
    expect(settled).toEqual([1]);
    await clock.advance(100);
    await Promise.all(calls);
    expect(shown).toEqual([1, 100]);
    expect(settled).toHaveLength(100);
  });

  it('keeps a caller waiting for a run that started before its call', async () => {
    const clock = createFakeClock();
    const queue = createEditQueue(options(clock));
    const first = deferred();
    const shown: string[] = [];
    void queue.schedule('m1', () => first.promise.then(() => void shown.push('old')));
    let resolved = false;
    const latest = queue
      .schedule('m1', async () => void shown.push('new'))
      .then(() => {
        resolved = true;
      });
    first.resolve();
    await settle();
    expect(shown).toEqual(['old', 'new']);
    await latest;
    expect(resolved).toBe(true);
  });

  it('runs one edit at a time', async () => {
    const clock = createFakeClock();
    const queue = createEditQueue({ ...options(clock), limit: 100 });
    let running = 0;
    let most = 0;
    const calls = ['a', 'b', 'c', 'd'].map((key) =>
      queue.schedule(key, async () => {
        running++;
        most = Math.max(most, running);
        await clock.sleep(50);
        running--;
      }),
    );
    await clock.advance(1000);
    await Promise.all(calls);
    expect(most).toBe(1);
  });

  it('keeps at most `limit` starts in any window over a long burst across several messages', async () => {
    const clock = createFakeClock();
    const timers = queueTimers(clock);
    const queue = createEditQueue({ limit: 5, windowMs: 5000, now: clock.now, setTimer: timers.setTimer });
    const starts: number[] = [];
    const keys = ['m1', 'm2', 'm3', 'm4'];
    const calls: Promise<void>[] = [];
    // Four messages streaming for a minute, a token every 50 ms each.
    for (let tick = 0; tick < 1200; tick++) {
      for (const key of keys) {
        calls.push(
          queue.schedule(key, async () => {
            starts.push(clock.now());
            await clock.sleep(80);
          }),
        );
      }
      await clock.advance(50);
    }
    await clock.advance(10_000);
    await Promise.all(calls);
    expectRateBound(starts, 5, 5000);
    // The budget is used, not merely respected: about one edit per second after the first five.
    expect(starts.length).toBeGreaterThanOrEqual(60);
    expect(starts.length).toBeLessThanOrEqual(5 + 70);
    expect(queue.pending).toBe(0);
    expect(timers.most).toBe(1);
  });

  it('serves five messages in turn, the longest waiting first', async () => {
    const clock = createFakeClock();
    const queue = createEditQueue(options(clock));
    const order: string[] = [];
    const keys = ['a', 'b', 'c', 'd', 'e'];
    let streaming = true;
    // Each message asks for its next edit as soon as its previous one finished, as a fast stream would.
    const stream = (key: string): Promise<void> =>
      queue.schedule(key, async () => {
        order.push(key);
        await clock.sleep(10);
        if (streaming) void stream(key);
      });
    for (const key of keys) void stream(key);
    await clock.advance(60_000);
    streaming = false;
    await clock.advance(10_000);
    expect(order.length).toBeGreaterThan(50);
    for (let i = 0; i + 5 <= order.length; i += 5) {
      expect(new Set(order.slice(i, i + 5)).size).toBe(5);
    }
  });

  it('keeps a message in its place in line when its pending content is replaced', async () => {
    const clock = createFakeClock();
    const queue = createEditQueue(options(clock));
    const blocker = deferred();
    const order: string[] = [];
    void queue.schedule('busy', () => blocker.promise);
    const edit = (label: string) => async () => void order.push(label);
    const calls = [
      queue.schedule('a', edit('a1')),
      queue.schedule('b', edit('b1')),
      queue.schedule('c', edit('c1')),
      queue.schedule('a', edit('a2')),
      queue.schedule('c', edit('c2')),
    ];
    blocker.resolve();
    await Promise.all(calls);
    expect(order).toEqual(['a2', 'b1', 'c2']);
  });

  it('rejects the waiters of a failed edit and goes on with the next ones', async () => {
    const clock = createFakeClock();
    const queue = createEditQueue(options(clock));
    const failure = new Error('Missing Access');
    const ran: string[] = [];
    // Outcomes are captured at once: the rejections happen before the assertions look at them.
    const outcome = (call: Promise<void>) =>
      call.then(
        () => 'resolved',
        (error: unknown) => error,
      );
    const failed = outcome(
      queue.schedule('m1', async () => {
        await clock.sleep(10);
        throw failure;
      }),
    );
    const merged = outcome(queue.schedule('m2', async () => void ran.push('m2 old')));
    const sameRun = outcome(
      queue.schedule('m2', async () => {
        throw failure;
      }),
    );
    const thrownSync = outcome(
      queue.schedule('m3', () => {
        throw new Error('sync');
      }),
    );
    const after = outcome(queue.schedule('m4', async () => void ran.push('m4')));
    await clock.advance(10);
    expect(await failed).toBe(failure);
    expect(await merged).toBe(failure);
    expect(await sameRun).toBe(failure);
    expect(await thrownSync).toMatchObject({ message: 'sync' });
    expect(await after).toBe('resolved');
    expect(ran).toEqual(['m4']);
    await expect(queue.schedule('m1', async () => {})).resolves.toBeUndefined();
  });

  it('waits for the window to pass instead of polling', async () => {
    const clock = createFakeClock();
    const timers = queueTimers(clock);
    const queue = createEditQueue({ limit: 2, windowMs: 1000, now: clock.now, setTimer: timers.setTimer });
    const starts: number[] = [];
    const edit = async () => void starts.push(clock.now());
    await Promise.all([queue.schedule('a', edit), queue.schedule('b', edit)]);
    const third = queue.schedule('c', edit);
    const fourth = queue.schedule('d', edit);
    expect(queue.pending).toBe(2);
    await clock.advance(999);
    expect(starts).toEqual([0, 0]);
    await clock.advance(1);
    await third;
    await clock.advance(1000);
    await fourth;
    expect(starts).toEqual([0, 0, 1000, 1000]);
    expect(timers.most).toBe(1);
  });

  it('rejects a limit or window that cannot be honoured', () => {
    expect(() => createEditQueue({ limit: 0, windowMs: 1000 })).toThrow(RangeError);
    expect(() => createEditQueue({ limit: 5, windowMs: Number.NaN })).toThrow(RangeError);
    expect(() => createEditQueues({ limit: 1.5, windowMs: 1000 })).toThrow(RangeError);
  });

  it('works with the real clock and timers by default', async () => {
    const queue = createEditQueue({ limit: 5, windowMs: 5000 });
    const ran: string[] = [];
    await Promise.all([
      queue.schedule('a', async () => void ran.push('a')),
      queue.schedule('b', async () => void ran.push('b')),
    ]);
    expect(ran).toEqual(['a', 'b']);
  });
});

describe('createEditQueues', () => {
  it('gives each channel its own budget', async () => {
    const clock = createFakeClock();
    const queues = createEditQueues({ limit: 1, windowMs: 1000, now: clock.now, setTimer: clock.setTimer });
    const starts: string[] = [];
    const edit = (label: string) => async () => void starts.push(label);
    void queues.forChannel('t1').schedule('m', edit('t1 first'));
    void queues.forChannel('t2').schedule('m', edit('t2 first'));
    void queues.forChannel('t1').schedule('m', edit('t1 second'));
    await settle();
    expect(starts).toEqual(['t1 first', 't2 first']);
    expect(queues.forChannel('t1').pending).toBe(1);
    await clock.advance(1000);
    expect(starts).toEqual(['t1 first', 't2 first', 't1 second']);
  });

  it('shares one budget between all messages of a channel', async () => {
    const clock = createFakeClock();
    const queues = createEditQueues(options(clock));
    const starts: number[] = [];
    const calls = Array.from({ length: 12 }, (_, i) =>
      queues.forChannel('thread').schedule(`m${i}`, async () => void starts.push(clock.now())),
    );
    await clock.advance(20_000);
    await Promise.all(calls);
    expect(starts).toEqual([0, 0, 0, 0, 0, 5000, 5000, 5000, 5000, 5000, 10_000, 10_000]);
  });

  it('drops a channel queue once it is idle and its window has passed', async () => {
    const clock = createFakeClock();
    const queues = createEditQueues(options(clock));
    for (let i = 0; i < 100; i++) await queues.forChannel(`thread-${i}`).schedule('m', async () => {});
    expect(queues.size).toBe(100);
    await clock.advance(4999);
    expect(queues.size).toBe(100);
    await clock.advance(1);
    expect(queues.size).toBe(0);
  });

  it('does not forget recent edits by dropping a queue too early', async () => {
    const clock = createFakeClock();
    const queues = createEditQueues(options(clock));
    const starts: number[] = [];
    const edit = async () => void starts.push(clock.now());
    for (let i = 0; i < 5; i++) await queues.forChannel('thread').schedule(`m${i}`, edit);
    await clock.advance(3000);
    const sixth = queues.forChannel('thread').schedule('m5', edit);
    await clock.advance(2000);
    await sixth;
    expect(starts).toEqual([0, 0, 0, 0, 0, 5000]);
  });

  it('keeps a queue handle usable after its channel queue was dropped', async () => {
    const clock = createFakeClock();
    const queues = createEditQueues(options(clock));
    const thread = queues.forChannel('thread');
    await thread.schedule('m', async () => {});
    await clock.advance(5000);
    expect(queues.size).toBe(0);
    const ran: string[] = [];
    await thread.schedule('m', async () => void ran.push('again'));
    expect(ran).toEqual(['again']);
    expect(queues.size).toBe(1);
    expect(thread.pending).toBe(0);
  });

  it('keeps a queue with work pending, however long it waits', async () => {
    const clock = createFakeClock();
    const queues = createEditQueues(options(clock));
    const slow = deferred();
    const call = queues.forChannel('thread').schedule('m', () => slow.promise);
    await clock.advance(60_000);
    expect(queues.size).toBe(1);
    slow.resolve();
    await call;
    await clock.advance(5000);
    expect(queues.size).toBe(0);
  });
});
