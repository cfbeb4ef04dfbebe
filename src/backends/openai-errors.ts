import OpenAI from 'openai';
import { ContextTooLongError, UpstreamError } from '../core/errors.ts';

/** The provider's own sentence, without the SDK's status prefix ("400 ..."). */
function providerMessage(error: InstanceType<typeof OpenAI.APIError>): string {
  const body = error.error as { message?: unknown } | undefined;
  return typeof body?.message === 'string' ? body.message : error.message;
}

/** True for OpenAI's "Another process is currently operating on this conversation" refusal. */
export function isConversationLocked(error: unknown): boolean {
  return error instanceof OpenAI.BadRequestError && error.code === 'conversation_locked';
}

/**
 * True when the prompt is longer than the model reads: OpenAI's code `context_length_exceeded`, llama.cpp's type
 * `exceed_context_size_error` (its `code` is the number 400), vLLM's "maximum context length" sentence.
 */
export function isContextTooLong(error: unknown): boolean {
  return (
    error instanceof OpenAI.BadRequestError &&
    (error.code === 'context_length_exceeded' ||
      error.type === 'exceed_context_size_error' ||
      /maximum context length|exceeds the available context size/i.test(error.message))
  );
}

/**
 * What a refusal of a too-long prompt says of the model's window and of what was sent, in the server's tokens:
 * llama.cpp's body has `n_ctx` and `n_prompt_tokens`; OpenAI's chat and vLLM say "maximum context length is N tokens.
 * However, your messages resulted in M tokens".
 */
export function contextLimit(error: unknown): { window: number; sent: number } | undefined {
  if (!(error instanceof OpenAI.APIError)) return undefined;
  const body = error.error as { n_ctx?: unknown; n_prompt_tokens?: unknown } | undefined;
  if (typeof body?.n_ctx === 'number' && typeof body.n_prompt_tokens === 'number')
    return { window: body.n_ctx, sent: body.n_prompt_tokens };
  const match = /maximum context length is (\d+) tokens.*?resulted in (\d+) tokens/is.exec(error.message);
  return match ? { window: Number(match[1]), sent: Number(match[2]) } : undefined;
}

/**
 * True when the model refused images or files as such: OpenAI's 400 for a model without vision ("Invalid content
 * type. image_url is only supported by certain models.", param `...content...type`), llama.cpp started without a
 * multimodal projector ("image input is not supported"), and the like from other servers.
 */
export function isAttachmentRefusal(error: unknown): boolean {
  // llama.cpp answers 500 for it; OpenAI and the others 400.
  if (!(error instanceof OpenAI.APIError) || (error.status !== 400 && error.status !== 500)) return false;
  return /image_url is only supported|image input is not supported|does not support (image|vision|file)|input_image|input_file.*not supported|multimodal/i.test(
    error.message,
  );
}

/**
 * Turns an SDK error into the core's UpstreamError, with the sentence the thread sees. The SDK has already retried
 * 429, 5xx and connection errors with backoff (honouring retry-after) by the time this runs.
 */
export function toUpstreamError(error: unknown, model: string): UpstreamError {
  if (error instanceof UpstreamError) return error;
  if (error instanceof OpenAI.AuthenticationError || error instanceof OpenAI.PermissionDeniedError) {
    return new UpstreamError(
      'auth',
      "OpenAI refused the bot's API key. The person who runs the bot needs to check OPENAI_API_KEY.",
      {
        retryable: false,
        cause: error,
      },
    );
  }
  if (
    error instanceof OpenAI.NotFoundError &&
    (error.code === 'model_not_found' || /model/i.test(error.message))
  ) {
    return new UpstreamError(
      'model_not_found',
      `The model \`${model}\` does not exist or the bot may not use it. A moderator can pick another with /settings.`,
      {
        retryable: false,
        cause: error,
      },
    );
  }
  if (isAttachmentRefusal(error)) {
    return new UpstreamError(
      'attachments_unsupported',
      `The model \`${model}\` cannot read images or files.`,
      { retryable: false, cause: error },
    );
  }
  if (isContextTooLong(error)) {
    // The core condenses the history and tries again; this is what the thread sees if even that does not fit.
    const limit = contextLimit(error);
    return new ContextTooLongError(
      'This thread is now longer than the model can read. A moderator can /branch reset it, or start a new thread with /chat.',
      { cause: error, ...(limit ? { limit } : {}) },
    );
  }
  if (error instanceof OpenAI.RateLimitError) {
    return new UpstreamError(
      'rate_limited',
      'OpenAI is rate limiting the bot right now. Press Retry in a moment.',
      {
        retryable: true,
        cause: error,
      },
    );
  }
  if (isConversationLocked(error)) {
    return new UpstreamError(
      'conversation_locked',
      'The conversation stayed busy for too long. Press Retry in a moment.',
      {
        retryable: true,
        cause: error,
      },
    );
  }
  if (error instanceof OpenAI.APIConnectionTimeoutError) {
    return new UpstreamError('timeout', 'OpenAI took too long to answer. Press Retry to try again.', {
      retryable: true,
      cause: error,
    });
  }
  if (error instanceof OpenAI.InternalServerError || error instanceof OpenAI.APIConnectionError) {
    return new UpstreamError('unavailable', 'OpenAI is not answering right now. Press Retry to try again.', {
      retryable: true,
      cause: error,
    });
  }
  if (error instanceof OpenAI.APIError && error.status !== undefined && error.status < 500) {
    return new UpstreamError('bad_request', `OpenAI rejected the request: ${providerMessage(error)}`, {
      retryable: false,
      cause: error,
    });
  }
  return new UpstreamError('unavailable', 'The model failed to answer. Press Retry to try again.', {
    retryable: true,
    cause: error,
  });
}

/**
 * Runs `request`, waiting and trying again while another process holds the conversation (a turn of another bot
 * process, or a response the provider is still finishing). Gives up after `maxWaitMs`.
 */
export async function retryWhileLocked<T>(
  request: () => Promise<T>,
  { maxWaitMs = 60_000, signal }: { maxWaitMs?: number; signal?: AbortSignal } = {},
): Promise<T> {
  const started = Date.now();
  for (let delay = 100; ; delay = Math.min(delay * 2, 2000)) {
    try {
      return await request();
    } catch (error) {
      if (!isConversationLocked(error) || Date.now() - started + delay > maxWaitMs || signal?.aborted)
        throw error;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}
