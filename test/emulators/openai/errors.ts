/** OpenAI-shaped errors: {"error":{"message","type","param","code"}}. */

export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export class ApiError extends Error {
  readonly status: number;
  readonly type: string;
  readonly param: string | null;
  readonly code: string | null;
  readonly headers: Record<string, string>;

  constructor(
    status: number,
    message: string,
    opts: {
      type?: string;
      param?: string | null;
      code?: string | null;
      headers?: Record<string, string>;
    } = {},
  ) {
    super(message);
    this.status = status;
    this.type = opts.type ?? 'invalid_request_error';
    this.param = opts.param ?? null;
    this.code = opts.code ?? null;
    this.headers = opts.headers ?? {};
  }

  body(): ErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export function maskKey(key: string): string {
  if (key.length <= 8) return `${key.slice(0, 3)}***`;
  return `${key.slice(0, 3)}${'*'.repeat(Math.min(20, key.length - 7))}${key.slice(-4)}`;
}

export function invalidApiKey(key: string): ApiError {
  return new ApiError(
    401,
    `Incorrect API key provided: ${maskKey(key)}. You can find your API key at https://platform.openai.com/account/api-keys.`,
    { code: 'invalid_api_key' },
  );
}

export function missingApiKey(): ApiError {
  return new ApiError(
    401,
    "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username and password. You can obtain an API key from https://platform.openai.com/account/api-keys.",
  );
}

export function badRequest(
  message: string,
  param: string | null = null,
  code: string | null = null,
): ApiError {
  return new ApiError(400, message, { param, code });
}

export function notFound(message: string, param: string | null = null, code: string | null = null): ApiError {
  return new ApiError(404, message, { param, code });
}

export function missingParam(param: string): ApiError {
  return badRequest(`Missing required parameter: '${param}'.`, param, 'missing_required_parameter');
}

export function invalidType(param: string, expected: string, got: unknown): ApiError {
  const kind = got === null ? 'null' : Array.isArray(got) ? 'an array' : `a ${typeof got}`;
  return badRequest(
    `Invalid type for '${param}': expected ${expected}, but got ${kind} instead.`,
    param,
    'invalid_type',
  );
}

export function conversationNotFound(id: string, param: string | null = null): ApiError {
  return notFound(`Conversation with id '${id}' not found.`, param);
}

export const CONVERSATION_LOCKED_MESSAGE =
  'Another process is currently operating on this conversation. Please retry in a few seconds.';

export function conversationLocked(): ApiError {
  return badRequest(CONVERSATION_LOCKED_MESSAGE, 'conversation', 'conversation_locked');
}

export function modelNotFound(model: string): ApiError {
  return notFound(
    `The model \`${model}\` does not exist or you do not have access to it.`,
    'model',
    'model_not_found',
  );
}

/** The error injected by `failNext`, with the default message of each status as OpenAI words it. */
export function injectedError(f: {
  status: number;
  retryAfterSeconds?: number;
  code?: string;
  message?: string;
  type?: string;
}): ApiError {
  const headers: Record<string, string> = {};
  if (f.retryAfterSeconds !== undefined) headers['retry-after'] = String(f.retryAfterSeconds);
  let message: string;
  let type = 'invalid_request_error';
  let code: string | null = null;
  switch (f.status) {
    case 401:
      message =
        'Incorrect API key provided: sk-***. You can find your API key at https://platform.openai.com/account/api-keys.';
      code = 'invalid_api_key';
      break;
    case 403:
      message = 'You are not allowed to sample from this model';
      type = 'invalid_request_error';
      break;
    case 404:
      message = 'The requested resource was not found (injected by the emulator).';
      break;
    case 429:
      message =
        'Rate limit reached for requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s. Visit https://platform.openai.com/account/rate-limits to learn more.';
      type = 'requests';
      code = 'rate_limit_exceeded';
      break;
    case 500:
      message = 'The server had an error while processing your request. Sorry about that!';
      type = 'server_error';
      break;
    case 502:
      message = 'Bad gateway.';
      type = 'server_error';
      break;
    case 503:
      message = 'The engine is currently overloaded, please try again later.';
      type = 'server_error';
      break;
    default:
      message = f.status >= 500 ? 'The server had an error processing your request.' : 'Invalid request.';
      type = f.status >= 500 ? 'server_error' : 'invalid_request_error';
  }
  return new ApiError(f.status, f.message ?? message, {
    type: f.type ?? type,
    code: f.code ?? code,
    headers,
  });
}
