import { BadInputError, NotAllowedError } from './errors.ts';
import type { Clock, Store } from './ports.ts';

/** Limits that keep one person from multiplying the bot's spending or flooding a thread. 0 turns a limit off. */
export interface AbuseLimits {
  /** Models non-moderators may name in /alternatives; empty: any model. */
  allowedModels: readonly string[];
  /** Longest style (characters). */
  maxStyleLength: number;
  /** Messages a person may post in one thread per `rateWindowMs`. */
  rateMessages: number;
  rateWindowMs: number;
  /** Messages a thread's inbox may hold (the one being answered included). */
  maxQueued: number;
}

export interface AbuseGuard {
  readonly limits: AbuseLimits;
  /**
   * Counts a message of a person in a thread, atomically (across processes); returns how long until they may post
   * again when over the rate, else undefined.
   */
  takeMessage(threadId: string, userId: string): Promise<number | undefined>;
  /** True at most once per rate window per person and thread: a refusal's notice must not become the spam. */
  takeNotice(threadId: string, userId: string, kind: string): Promise<boolean>;
  /** Refuses models outside the allowlist (non-moderators) and styles that are too long. */
  checkVariants(request: {
    models: readonly string[];
    styles: readonly string[];
    isModerator: boolean;
    defaultModel: string;
  }): void;
}

/** The window a notice is rate-limited by when no message rate is configured. */
const NOTICE_WINDOW_MS = 30_000;

export function createAbuseGuard({
  store,
  clock,
  limits,
}: {
  store: Store;
  clock: Clock;
  limits: AbuseLimits;
}): AbuseGuard {
  return {
    limits,

    async takeMessage(threadId, userId) {
      if (limits.rateMessages <= 0) return undefined;
      const now = clock.now();
      let waitMs: number | undefined;
      // A sliding window: the times of the person's last messages in the thread, at most `rateMessages` of them.
      await store.update<number[]>(`rate:messages:${threadId}:${userId}`, (times) => {
        const recent = (times ?? []).filter((t) => t > now - limits.rateWindowMs);
        if (recent.length >= limits.rateMessages) {
          waitMs = recent[0]! + limits.rateWindowMs - now;
          return times;
        }
        waitMs = undefined;
        return [...recent, now];
      });
      return waitMs;
    },

    async takeNotice(threadId, userId, kind) {
      const now = clock.now();
      const windowMs = limits.rateWindowMs > 0 ? limits.rateWindowMs : NOTICE_WINDOW_MS;
      let allowed = false;
      await store.update<number>(`rate:notice:${kind}:${threadId}:${userId}`, (until) => {
        allowed = (until ?? 0) <= now;
        return allowed ? now + windowMs : until;
      });
      return allowed;
    },

    checkVariants({ models, styles, isModerator, defaultModel }) {
      if (!isModerator && limits.allowedModels.length > 0) {
        const allowed = new Set([...limits.allowedModels, defaultModel]);
        const refused = models.filter((m) => m && !allowed.has(m));
        if (refused.length > 0)
          throw new NotAllowedError(
            `Only moderators can use other models; allowed here: ${[...allowed].join(', ')}.`,
          );
      }
      if (limits.maxStyleLength > 0 && styles.some((s) => s.length > limits.maxStyleLength))
        throw new BadInputError(`Each style can be at most ${limits.maxStyleLength} characters long.`);
    },
  };
}
