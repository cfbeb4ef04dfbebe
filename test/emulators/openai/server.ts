/** The HTTP server: records every request, injects failures, checks the API key, routes. */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { chatRoutes } from './chat.ts';
import { compactRoutes } from './compact.ts';
import { conversationRoutes } from './conversations.ts';
import { ApiError, injectedError, invalidApiKey, missingApiKey } from './errors.ts';
import { parseJson, readBody, sendError } from './http.ts';
import { isObject } from './input.ts';
import { modelRoutes } from './models.ts';
import { normalizeLatency } from './pacing.ts';
import { conversationIdOf, responseRoutes } from './responses.ts';
import { type Ctx, matchRoute, type Route } from './router.ts';
import { EmulatorState } from './state.ts';
import type {
  ConversationSnapshot,
  OpenAIEmulator,
  OpenAIEmulatorOptions,
  RecordedRequest,
} from './types.ts';

export const DEFAULT_API_KEY = 'sk-test-emulator';
/** `gpt-3.5-turbo` takes text only: it refuses images and files (media.ts). */
/** `tf-test-8k` has a context window of 8,192 tokens (context.ts), for tests of long threads. */
export const DEFAULT_MODELS = [
  'gpt-4.1-mini',
  'gpt-4.1',
  'gpt-5-mini',
  'gpt-4o-mini',
  'gpt-3.5-turbo',
  'tf-test-8k',
];

const routes: Route[] = [
  ...conversationRoutes,
  ...compactRoutes,
  ...responseRoutes,
  ...chatRoutes,
  ...modelRoutes,
];

/** Records the status when the head is written and the end time when the last byte is handed over. */
function instrument(res: ServerResponse, rec: RecordedRequest): void {
  const writeHead = res.writeHead;
  res.writeHead = function (this: ServerResponse, ...args: unknown[]) {
    if (typeof args[0] === 'number') rec.status = args[0];
    return Reflect.apply(writeHead, this, args) as ServerResponse;
  } as typeof res.writeHead;
  const end = res.end;
  res.end = function (this: ServerResponse, ...args: unknown[]) {
    rec.endedAt ??= performance.now();
    return Reflect.apply(end, this, args) as ServerResponse;
  } as typeof res.end;
  res.on('close', () => {
    rec.endedAt ??= performance.now();
  });
}

function conversationIdFor(
  template: string,
  params: Record<string, string>,
  body: unknown,
): string | undefined {
  if (template.includes('/v1/conversations/:id')) return params.id;
  if (template === 'POST /v1/responses' && isObject(body)) return conversationIdOf(body.conversation);
  return undefined;
}

async function handle(state: EmulatorState, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const startedAt = performance.now();
  const method = (req.method ?? 'GET').toUpperCase();
  const url = new URL(req.url ?? '/', 'http://127.0.0.1');
  const path = url.pathname.replace(/\/+$/, '') || '/';
  const query: Record<string, string> = {};
  for (const [k, v] of url.searchParams) query[k] = v;
  const match = matchRoute(routes, method, path);
  const rec: RecordedRequest = {
    id: state.requests.length + 1,
    method,
    path,
    route: match?.template ?? `${method} ${path}`,
    query,
    body: undefined,
    status: 0,
    startedAt,
    endedAt: undefined,
    conversationId: undefined,
    bytes: 0,
  };
  state.requests.push(rec);
  instrument(res, rec);
  try {
    const raw = await readBody(req);
    rec.bytes = raw.bytes;
    let body: unknown;
    let parseError: ApiError | undefined;
    try {
      body = parseJson(raw.text);
    } catch (err) {
      body = raw.text;
      parseError = err instanceof ApiError ? err : undefined;
    }
    rec.body = body;
    if (match) rec.conversationId = conversationIdFor(match.template, match.params, body);

    const failure = state.takeFailure(method, rec.route, path);
    if (failure) throw injectedError(failure);

    const auth = req.headers.authorization;
    const key = auth?.match(/^Bearer\s+(.+)$/i)?.[1]?.trim();
    if (!key) throw missingApiKey();
    if (key !== state.config.apiKey) throw invalidApiKey(key);

    if (!match) throw new ApiError(404, `Invalid URL (${method} ${path})`);
    if (parseError) throw parseError;
    const ctx: Ctx = { req, res, params: match.params, query, body, rec, state };
    await match.route.handler(ctx);
  } catch (err) {
    const apiErr =
      err instanceof ApiError
        ? err
        : new ApiError(500, 'The server had an error while processing your request. Sorry about that!', {
            type: 'server_error',
          });
    if (!(err instanceof ApiError)) console.error('[openai-emulator] internal error', err);
    if (res.headersSent) res.destroy();
    else sendError(res, apiErr);
  }
}

export async function createOpenAIEmulator(options: OpenAIEmulatorOptions = {}): Promise<OpenAIEmulator> {
  const apiKey = options.apiKey ?? DEFAULT_API_KEY;
  const state = new EmulatorState({
    apiKey,
    models: [...(options.models ?? DEFAULT_MODELS)],
    contextWindowTokens: options.contextWindowTokens,
    contextWindows: { ...options.contextWindows },
    promptCaching: options.promptCaching ?? true,
    latency: normalizeLatency(options.latency),
  });
  const server = createServer((req, res) => {
    void handle(state, req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  let closed: Promise<void> | undefined;

  return {
    baseURL: `http://127.0.0.1:${port}/v1`,
    apiKey,
    requests: state.requests,
    setLatency(l) {
      state.latency = normalizeLatency(l);
    },
    failNext(f) {
      state.failures.push({ ...f, remaining: f.times ?? 1 });
    },
    setChatRejectsMultipleChoices(on) {
      state.chatRejectsMultipleChoices = on;
    },
    conversation(id): ConversationSnapshot | undefined {
      const c = state.conversations.get(id);
      if (!c) return undefined;
      return { id: c.id, metadata: { ...c.metadata }, items: structuredClone(c.items) };
    },
    conversationIds() {
      return [...state.conversations.keys()];
    },
    response(id) {
      const r = state.responses.get(id);
      return r ? structuredClone(r.object) : undefined;
    },
    seen(key) {
      if (typeof key === 'number') return state.requests.find((r) => r.id === key)?.seen;
      return state.responses.get(key)?.seen;
    },
    compaction(encryptedContent) {
      return state.sealer.open(encryptedContent);
    },
    contextWindow(model) {
      return state.contextWindow(model);
    },
    setPromptCaching(on) {
      state.promptCache.enabled = on;
    },
    clearPromptCache() {
      state.promptCache.clear();
    },
    reset() {
      state.reset();
    },
    close() {
      closed ??= new Promise<void>((resolve) => {
        for (const c of state.running) c.abort();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closed;
    },
  };
}
