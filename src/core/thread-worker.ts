import type { CoreDeps, HeldThread } from './deps.ts';
import { BotError, LockLostError } from './errors.ts';
import { runFork } from './fork.ts';
import type { Lease, LockService } from './ports.ts';
import { answerBatch, userItemOf } from './turn.ts';
import { applyWinner, closeIfDue, recover } from './vote-jobs.ts';
import { isLive } from './votes.ts';

/** A piece of work on one thread, run by its worker while it holds the thread's lock. */
export type ThreadJob<T> = (held: HeldThread) => Promise<T>;

/**
 * One worker per thread owns its lock and runs its work one job at a time: jobs handed to it (a fork asked for by
 * /alternatives, a moderator's action), then whatever the thread's record says is due (a closed vote to apply, an
 * open one past its deadline, waiting messages to answer or to fork on). When the lock is lost the worker stops at
 * once; jobs still queued wait to take the lock again.
 */
export interface ThreadWorkers {
  run<T>(threadId: string, job: ThreadJob<T>): Promise<T>;
  /** Makes the thread's worker look at its record (a message arrived, a vote closed). */
  kick(threadId: string): void;
  /** Resolves when no worker runs in this process. */
  idle(): Promise<void>;
  /**
   * Stops taking work: queued jobs are refused, running replies get `graceMs` to finish and are then stopped (they
   * end as "stopped", in the thread and in history); resolves when every worker is done.
   */
  shutdown(graceMs: number): Promise<void>;
}

interface Queued {
  job: ThreadJob<unknown>;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

interface Worker {
  jobs: Queued[];
  /** Set by kick: the record may hold new work. */
  look: boolean;
  running: Promise<void> | undefined;
}

export class ShuttingDownError extends BotError {
  constructor() {
    super('shutting_down', 'The bot is restarting; try again in a moment.');
  }
}

export function createThreadWorkers(deps: CoreDeps & { locks: LockService }): ThreadWorkers {
  const { sessions, locks, logger, clock } = deps;
  const workers = new Map<string, Worker>();
  const shutdownController = new AbortController();
  let stopping = false;

  function holdThread(threadId: string, lease: Lease): HeldThread {
    return {
      threadId,
      lease,
      signal: AbortSignal.any([lease.signal, shutdownController.signal]),
      update: (change) => sessions.update(threadId, change, lease.fencingToken),
      async read() {
        const session = await sessions.get(threadId);
        if (!session) throw new BotError('not_managed', 'This thread is not managed by threadfork.');
        return session;
      },
    };
  }

  function workerOf(threadId: string): Worker {
    let worker = workers.get(threadId);
    if (!worker) {
      worker = { jobs: [], look: false, running: undefined };
      workers.set(threadId, worker);
    }
    return worker;
  }

  function start(threadId: string): void {
    const worker = workerOf(threadId);
    if (worker.running) return;
    worker.running = loop(threadId, worker)
      .catch((error: unknown) => {
        // A lost lock is no failure of the jobs still queued: they wait to take the lock again.
        if (error instanceof LockLostError) {
          logger.warn({ threadId }, 'lost the thread lock; the new holder goes on');
          return;
        }
        logger.error({ err: error, threadId }, 'the thread worker failed');
        for (const queued of worker.jobs.splice(0)) queued.reject(error);
      })
      .finally(() => {
        worker.running = undefined;
        if (stopping) for (const queued of worker.jobs.splice(0)) queued.reject(new ShuttingDownError());
        if (!stopping && (worker.jobs.length > 0 || worker.look)) start(threadId);
        else workers.delete(threadId);
      });
  }

  async function loop(threadId: string, worker: Worker): Promise<void> {
    worker.look = false;
    await locks.withLock(`thread:${threadId}`, async (lease) => {
      const claimed = await sessions.claim(threadId, lease.fencingToken);
      if (!claimed) {
        const error = new BotError('not_managed', 'This thread is not managed by threadfork.');
        for (const queued of worker.jobs.splice(0)) queued.reject(error);
        return;
      }
      const held = holdThread(threadId, lease);
      await recover(deps, held);
      while (!lease.signal.aborted) {
        const queued = worker.jobs.shift();
        if (queued) {
          if (stopping) {
            queued.reject(new ShuttingDownError());
            continue;
          }
          // A closed vote is applied before anything else runs on the thread, so every job starts from its winner.
          await applyWinner(deps, held)
            .then(() => queued.job(held))
            .then(queued.resolve, queued.reject);
          continue;
        }
        if (stopping) return;
        worker.look = false;
        if (!(await step(held))) return;
      }
    });
  }

  /** Does the next thing the thread's record says is due; false when nothing is. */
  async function step(held: HeldThread): Promise<boolean> {
    const session = await held.read();
    const vote = session.vote;
    if (vote?.status === 'closed') {
      await applyWinner(deps, held);
      return true;
    }
    if (vote?.status === 'open' && vote.deadline <= clock.now()) return closeIfDue(deps, held.threadId);
    deps.telemetry.queueDepth({ threadId: held.threadId, waiting: session.inbox.length });
    if (isLive(vote)) return false;
    if (session.inbox.length === 0) {
      // Off the work index, then look once more: a message stored in between must not be left unlisted.
      await sessions.setHasWork(held.threadId, false);
      if ((await held.read()).inbox.length === 0) return false;
      await sessions.setHasWork(held.threadId, true);
      return true;
    }
    const batch = session.settings.gatherMessages ? session.inbox : session.inbox.slice(0, 1);
    const { settings } = session;
    if (settings.autoAlternatives >= 2 && settings.alternativesEnabled) {
      const last = batch.at(-1)!;
      await runFork(deps, held, {
        invokerId: last.authorId,
        count: Math.min(settings.autoAlternatives, deps.limits.maxAlternatives),
        prompt: { item: userItemOf(batch), replyTo: last.messageId },
        answers: batch,
        styles: [],
        models: [],
        temperature: undefined,
      }).catch((error: unknown) =>
        logger.warn({ err: error, threadId: held.threadId }, 'automatic alternatives failed'),
      );
      return true;
    }
    await answerBatch(deps, held, batch);
    return true;
  }

  return {
    run<T>(threadId: string, job: ThreadJob<T>): Promise<T> {
      if (stopping) return Promise.reject(new ShuttingDownError());
      return new Promise<T>((resolve, reject) => {
        workerOf(threadId).jobs.push({
          job: job as ThreadJob<unknown>,
          resolve: resolve as (value: unknown) => void,
          reject,
        });
        start(threadId);
      });
    },
    kick(threadId) {
      if (stopping) return;
      const worker = workerOf(threadId);
      if (worker.running) worker.look = true;
      else start(threadId);
    },
    async idle() {
      for (;;) {
        const running = [...workers.values()].flatMap((w) => (w.running ? [w.running] : []));
        if (running.length === 0) return;
        await Promise.all(running);
      }
    },
    async shutdown(graceMs) {
      stopping = true;
      const timer = setTimeout(() => shutdownController.abort(new ShuttingDownError()), graceMs);
      try {
        await this.idle();
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
