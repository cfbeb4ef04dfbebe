/**
 * The errors a person in Discord must be told apart. Each carries the sentence they see (`userMessage`); the
 * Discord layer maps them to an ephemeral reply or a notice, the log gets `code` and `cause`.
 */
export class BotError extends Error {
  readonly code: string;
  readonly userMessage: string;
  constructor(code: string, userMessage: string, options?: { cause?: unknown }) {
    super(userMessage, options);
    this.name = new.target.name;
    this.code = code;
    this.userMessage = userMessage;
  }
}

/** The person may not do this (not a moderator, not the invoker). */
export class NotAllowedError extends BotError {
  constructor(userMessage: string) {
    super('not_allowed', userMessage);
  }
}

/** An option or a click that makes no sense now (count out of range, thread not managed, vote closed). */
export class BadInputError extends BotError {
  constructor(userMessage: string) {
    super('bad_input', userMessage);
  }
}

/** Something named by the user does not exist (a branch id, a ballot). */
export class NotFoundError extends BotError {
  constructor(userMessage: string) {
    super('not_found', userMessage);
  }
}

/** The person must wait (cooldown). */
export class RateLimitedError extends BotError {
  readonly retryAfterMs: number;
  constructor(userMessage: string, retryAfterMs: number) {
    super('rate_limited', userMessage);
    this.retryAfterMs = retryAfterMs;
  }
}

/** Why a provider call failed, as far as the thread needs to know. */
export type UpstreamFailure =
  | 'auth'
  | 'model_not_found'
  | 'context_too_long'
  | 'refused'
  | 'rate_limited'
  | 'unavailable'
  | 'bad_request'
  | 'conversation_locked'
  | 'timeout'
  /** The model takes no images or files (no vision); the backend answers the text alone instead. */
  | 'attachments_unsupported';

/** The model provider failed after retries; `retryable` says whether trying again later can help. */
export class UpstreamError extends BotError {
  readonly failure: UpstreamFailure;
  readonly retryable: boolean;
  constructor(
    failure: UpstreamFailure,
    userMessage: string,
    options: { retryable: boolean; cause?: unknown },
  ) {
    super(`upstream_${failure}`, userMessage, { cause: options.cause });
    this.failure = failure;
    this.retryable = options.retryable;
  }
}

/** The store cannot be reached: nothing was changed, try again shortly. */
export class UnavailableError extends BotError {
  constructor(cause: unknown) {
    super(
      'unavailable',
      'threadfork is temporarily unavailable (its storage cannot be reached). Try again shortly.',
      {
        cause,
      },
    );
  }
}

/** Another process took this thread's turn over (this one's lock expired); its result must not be written. */
export class LockLostError extends BotError {
  constructor() {
    super(
      'lock_lost',
      'This reply was taken over by another instance of the bot; it is answered again below.',
    );
  }
}

/**
 * The provider refused a context longer than the model reads (the thread's history, not the message alone: that one
 * is a plain `context_too_long`). The core condenses the history and tries once more.
 */
export class ContextTooLongError extends UpstreamError {
  /** What the provider said it reads and was sent, in its own tokens, when it said (llama.cpp, vLLM, OpenAI chat). */
  readonly limit: { window: number; sent: number } | undefined;
  constructor(userMessage: string, options: { cause?: unknown; limit?: { window: number; sent: number } }) {
    super('context_too_long', userMessage, { retryable: false, cause: options.cause });
    this.limit = options.limit;
  }
}
