import type { AbuseGuard } from './abuse.ts';
import type { ArenaLog } from './arena-log.ts';
import type { AttachmentStore } from './attachments.ts';
import type { BudgetService } from './budgets.ts';
import type { ContextPolicy } from './context-windows.ts';
import type { HistoryLog } from './history-log.ts';
import type { ThreadSession, ThreadSettings } from './model.ts';
import type { Clock, Lease, Logger, ModelBackend, ThreadPresenter } from './ports.ts';
import type { RunningTurns } from './running-turns.ts';
import type { SessionRepository } from './sessions.ts';
import type { Telemetry } from './telemetry.ts';

/** What the core's jobs need; built once in src/app.ts. */
export interface CoreDeps {
  sessions: SessionRepository;
  log: HistoryLog;
  backend: ModelBackend;
  presenter: ThreadPresenter;
  running: RunningTurns;
  clock: Clock;
  logger: Logger;
  telemetry: Telemetry;
  defaults: ThreadSettings;
  limits: { maxAlternatives: number; cooldownMs: number };
  /** Where applied votes are recorded for the server's leaderboard; absent: they are not recorded. */
  arena?: ArenaLog;
  /** Token budgets (src/core/spending.ts reserves and settles); absent: nothing is counted or refused. */
  budgets?: BudgetService;
  /** Message rate, queue bound, model allowlist, style length; absent: no such limits. */
  abuse?: AbuseGuard;
  /** Images and files kept for the model; absent: a prune leaves them (tests without attachments). */
  attachments?: AttachmentStore;
  /** Context windows and when to condense a long thread's oldest part; absent: never (history goes as it is). */
  context?: ContextPolicy;
  /** Closes the thread's vote when its deadline comes, if this process is still running then. */
  armDeadline(threadId: string, deadline: number): void;
}

/** A thread held by its worker: every write goes through `update`, which the store refuses once the lock is lost. */
export interface HeldThread {
  threadId: string;
  lease: Lease;
  /** Aborts when the lease is lost, or when a shutdown stops waiting for running replies. */
  signal: AbortSignal;
  update(change: (session: ThreadSession) => ThreadSession): Promise<ThreadSession>;
  /** Reads the thread's record (it exists: the worker checked when it claimed the thread). */
  read(): Promise<ThreadSession>;
}

/** Runs a presenter call whose failure must not stop the thread's work (an archived or locked thread). */
export async function safely<T>(
  deps: Pick<CoreDeps, 'logger'>,
  fields: { threadId: string; what: string },
  call: () => Promise<T>,
): Promise<T | undefined> {
  try {
    return await call();
  } catch (error) {
    deps.logger.warn({ err: error, threadId: fields.threadId }, `could not ${fields.what}`);
    return undefined;
  }
}
