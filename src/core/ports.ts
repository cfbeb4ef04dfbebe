/**
 * The small interfaces the core needs from the outside world. Adapters implement them (src/store, src/backends,
 * src/discord); tests implement them with recording fakes.
 */
import type { BudgetExceeded } from './budgets.ts';
import type { BotError } from './errors.ts';
import type { BackendKind, Condensed, Item, ProviderState, ThreadSession, Vote } from './model.ts';

/** A key-value store of JSON records. Errors are thrown (never read as a missing key: state must not vanish). */
export interface Store {
  get<T>(key: string): Promise<T | undefined>;
  set<T>(key: string, value: T): Promise<void>;
  delete(key: string): Promise<void>;
  /**
   * Read-modify-write without lost updates, even when several callers (or processes) update one key at once.
   * `change` may run more than once (on conflict) and must be pure; returning undefined deletes the key.
   */
  update<T>(key: string, change: (current: T | undefined) => T | undefined): Promise<T | undefined>;
  close(): Promise<void>;
}

/** A held lock. `fencingToken` grows with every acquisition of the key, so a late writer can be told apart. */
export interface Lease {
  readonly fencingToken: number;
  /** Aborted when the lock was lost (expired without renewal); work under it must stop writing. */
  readonly signal: AbortSignal;
}

/** Mutual exclusion per key, within a process or across processes (Redis). */
export interface LockService {
  withLock<T>(key: string, work: (lease: Lease) => Promise<T>): Promise<T>;
}

export interface Clock {
  now(): number;
  /** A cancellable timer; the core's timers (vote deadlines) go through here so tests can drive time. */
  setTimer(callback: () => void, ms: number): { cancel(): void };
}

export interface Logger {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

export interface Usage {
  inputTokens: number;
  outputTokens: number;
  /** Of `inputTokens`, those the provider served from its prompt cache (billed lower); absent when none or unknown. */
  cachedInputTokens?: number;
}

/** What one generation is asked for. */
export interface GenerationOptions {
  model: string;
  instructions: string | undefined;
  temperature: number | undefined;
  /**
   * Tokens past which the provider compacts the context itself (OpenAI's `context_management`); absent: it does not
   * (the core summarises instead). Only for a backend with `serverCompaction`.
   */
  compactThreshold?: number;
  /** Let the provider drop the oldest context rather than refuse (OpenAI's `truncation: "auto"`): a last resort. */
  truncate?: boolean;
  /** Groups one thread's requests in the provider's prompt cache (see cache-key.ts); absent: no grouping. */
  cacheKey?: string | undefined;
}

export interface Generated {
  /** The whole reply (think blocks included; the core strips them for display). */
  text: string;
  usage: Usage;
  responseId: string | undefined;
  /** True when the signal ended the generation early; `text` is what had arrived. */
  stopped: boolean;
  /** True when the model declined; `text` is its refusal. */
  refused: boolean;
  /**
   * True when the model refused the images or files (a model without vision, a `chat` server without it), and the
   * backend answered the text alone on a second try.
   */
  attachmentsDropped?: boolean;
  /**
   * The provider compacted the context while answering (`compactThreshold`): its compaction items, as they came. They
   * stand for everything the request held before the reply.
   */
  compaction?: Record<string, unknown>[];
}

/** What `condense` makes: the new condensed form of the oldest part of a history. */
export type CondensedContent = Pick<Condensed, 'kind' | 'text' | 'items'>;

/** One alternative to generate in a fork. */
export interface Variant {
  options: GenerationOptions;
  signal: AbortSignal;
  onDelta(text: string): void;
}

/**
 * A branch's history as the bot recorded it, read lazily: a backend reads only the part it needs (the
 * conversations backend with a conversation reads nothing), so a turn's cost does not grow with the thread.
 */
export interface HistoryView {
  readonly length: number;
  /**
   * What stands for items 0 to `condensed.covers`: a backend sends it, then `read(condensed.covers)`, never the items
   * it covers (see `contextOf` in src/core/context.ts).
   */
  readonly condensed?: Condensed | undefined;
  /** Items `start` (default 0) to the end, oldest first. */
  read(start?: number): Promise<Item[]>;
}

/**
 * How a branch's history is kept at the model provider. One implementation per `BACKEND`; each turns its SDK's
 * errors into UpstreamError, retries what can be retried, and never lets "another process is operating on this
 * conversation" reach the core.
 */
export interface ModelBackend {
  readonly kind: BackendKind;
  /** The provider compacts long contexts itself when asked (`GenerationOptions.compactThreshold`). */
  readonly serverCompaction: boolean;
  /**
   * Folds `items` (the oldest part of a history, right after what `previous` stands for) into one condensed form: a
   * summary written by the model, or the provider's compaction. Its usage counts like any generation's.
   */
  condense(request: {
    previous: Condensed | undefined;
    items: readonly Item[];
    /** `compaction`: the provider's own (where it has one); `summary`: a summary the model writes. */
    how: Condensed['kind'];
    options: GenerationOptions;
    /** The most tokens a summary may take. */
    maxTokens: number;
    signal: AbortSignal;
  }): Promise<CondensedContent & { usage: Usage }>;
  /**
   * Answers `input` after `history` on a branch. `provider` is the branch's provider state (undefined: none yet, the
   * backend makes it from `history` if it needs one); the state to keep afterwards is returned.
   */
  runTurn(request: {
    provider: ProviderState | undefined;
    history: HistoryView;
    input: readonly Item[];
    options: GenerationOptions;
    signal: AbortSignal;
    onDelta(text: string): void;
    /**
     * True when an earlier attempt at this turn may have reached the provider (its process died, or lost its lock
     * and may still be running): provider state that keeps history must not be continued as it is, since that
     * attempt may add to it at any time. The backend may answer on new provider state instead; the core releases the
     * old one once the turn is committed.
     */
    resumed?: boolean;
  }): Promise<Generated & { provider: ProviderState | undefined }>;
  /**
   * Generates one reply per variant to `input` after `history`, all at once, without touching any branch's provider
   * state (so no lock and no copy). One variant's failure does not stop the others.
   */
  generateAlternatives(request: {
    history: HistoryView;
    input: readonly Item[];
    variants: readonly Variant[];
  }): Promise<PromiseSettledResult<Generated>[]>;
  /**
   * Makes provider state that held `from` hold `to` instead, where both share their first `sharedPrefix` items; this
   * lets the winner of a vote continue on its parent's conversation at a cost that does not grow with history.
   */
  transfer(request: {
    provider: ProviderState;
    from: HistoryView;
    to: HistoryView;
    sharedPrefix: number;
  }): Promise<ProviderState | undefined>;
  /** Deletes provider state that no branch uses any more. */
  release(provider: ProviderState): Promise<void>;
}

/** A reply being shown to the thread (the Discord layer streams it by edits). */
export interface ReplyHandle {
  /** The reply text so far, ready to show. Cheap: the presenter merges updates. */
  update(text: string): void;
  finish(outcome: ReplyOutcome): Promise<void>;
}

export type ReplyOutcome =
  | { kind: 'done'; text: string; usage: Usage | undefined; refused: boolean }
  | { kind: 'stopped'; text: string; by: 'person' | 'shutdown' }
  | { kind: 'failed'; text: string; error: BotError; retryMessageId: string | undefined };

/** A moderator's change of a thread's branches; the Discord layer words it for the thread, the log and the audit. */
export type BranchAction = { threadId: string; userId: string } & (
  | { action: 'switch'; branchId: string }
  | { action: 'reset'; to: 'last_fork'; branchId: string }
  | { action: 'reset'; to: 'root'; branchId: string }
  | { action: 'reset'; to: 'fork_point'; of: string; branchId: string }
  | { action: 'prune'; branchIds: string[] }
);

/** Something the thread is told that is not a reply; the Discord layer words it. */
export type Notice =
  | {
      kind: 'attachments_not_sent';
      /** The model refused them; the text of the message was answered without them. */
      reason: 'model_refused';
    }
  | { kind: 'branch_action'; action: BranchAction }
  /** Older messages of the thread now reach the model as a summary or the provider's compaction (told once). */
  | { kind: 'history_condensed'; how: 'summary' | 'compaction' }
  | {
      kind: 'vote_cancelled';
      reason: NonNullable<Vote['cancelReason']>;
      /** The messages the vote was answering stay waiting and are answered again (automatic alternatives). */
      answeredAgain: boolean;
    }
  /** A message was not answered: its author is over a budget. It is in the failed list (`retry`: show Retry). */
  | { kind: 'over_budget'; messageId: string; userId: string; exceeded: BudgetExceeded; retry: boolean }
  /** A message was not queued: its author posts too fast, or the thread's queue is full. */
  | {
      kind: 'message_refused';
      messageId: string;
      userId: string;
      reason: 'rate_limited' | 'queue_full';
      retryAfterMs: number | undefined;
    };

/** How the core shows things in a thread: structured events only, never Discord text. */
export interface ThreadPresenter {
  startReply(
    threadId: string,
    reply: {
      turnId: string;
      /** For an alternative of a vote: its letter and what makes it different (not to be shown while blind). */
      alternative:
        | { letter: string; style: string | undefined; model: string | undefined; blind: boolean }
        | undefined;
      replyToMessageId: string | undefined;
    },
  ): Promise<ReplyHandle>;
  notice(threadId: string, notice: Notice): Promise<void>;
  /**
   * Shows a fork as it is generated: the alternatives of the vote (those still `generating`, in `turns`' order)
   * stream side by side in the place that becomes the vote's ballot. Returns one handle per turn and the id of the
   * ballot's message.
   */
  startAlternatives(
    threadId: string,
    fork: {
      vote: Vote;
      turns: readonly { letter: string; turnId: string }[];
      replyToMessageId: string | undefined;
    },
  ): Promise<{ ballotMessageId: string; replies: ReplyHandle[] }>;
  /** Shows the ballot of a vote that just opened (where its alternatives are, when they were shown); returns its message id. */
  showBallot(threadId: string, vote: Vote): Promise<string>;
  /** Shows the vote's current state; `load` reads the session when the edit runs, so merged updates show the latest. */
  updateBallot(threadId: string, load: () => Promise<ThreadSession | undefined>): Promise<void>;
}
