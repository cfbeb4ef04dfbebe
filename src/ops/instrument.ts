/**
 * Instrumentation at the edges the core does not see: the Store port (latency per operation), the openai SDK's
 * fetch (every HTTP attempt, its status and whether it is a retry) and discord.js's REST manager (responses, 429s,
 * retries, waits on known rate limits). Each only observes: it changes no value, order or error.
 */
import type { REST } from 'discord.js';
import type { Store } from '../core/ports.ts';
import type { Metrics } from './metrics.ts';

/** The Store, each operation timed into `threadfork_store_operation_duration_seconds{operation,outcome}`. */
export function instrumentStore(store: Store, metrics: Pick<Metrics, 'storeOperation'>): Store {
  const timed = async <T>(operation: string, run: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    let outcome: 'ok' | 'error' = 'error';
    try {
      const result = await run();
      outcome = 'ok';
      return result;
    } finally {
      metrics.storeOperation({ operation, outcome, seconds: (performance.now() - started) / 1000 });
    }
  };
  return {
    get: (key) => timed('get', () => store.get(key)),
    set: (key, value) => timed('set', () => store.set(key, value)),
    delete: (key) => timed('delete', () => store.delete(key)),
    // One observation for the whole read-modify-write, conflicts and their retries included.
    update: (key, change) => timed('update', () => store.update(key, change)),
    close: () => store.close(),
  };
}

/**
 * The endpoint a request went to, for a label: the first path segment after the API's base path (`responses`,
 * `conversations`, `chat`), so ids in the rest of the path never become label values.
 */
export function openaiEndpoint(url: string, basePath: string): string {
  let path: string;
  try {
    path = new URL(url).pathname;
  } catch {
    return 'unknown';
  }
  const base = basePath.replace(/\/+$/, '');
  if (base && path.startsWith(`${base}/`)) path = path.slice(base.length);
  return path.split('/').find((segment) => segment !== '') ?? 'unknown';
}

/**
 * A fetch for the openai SDK (its `fetch` option) that counts every HTTP attempt. The SDK numbers its attempts in
 * the `X-Stainless-Retry-Count` header (0 for the first), which tells a retry apart without guessing from statuses.
 */
export function countingFetch(
  metrics: Pick<Metrics, 'openaiRequest'>,
  options: { baseUrl: string | undefined; fetch?: typeof fetch },
): typeof fetch {
  const base = options.fetch ?? globalThis.fetch;
  const basePath = new URL(options.baseUrl ?? 'https://api.openai.com/v1').pathname;
  return async (input, init) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const endpoint = openaiEndpoint(url, basePath);
    const retryCount = Number(new Headers(init?.headers).get('x-stainless-retry-count') ?? '0');
    const retry = Number.isFinite(retryCount) && retryCount > 0;
    try {
      const response = await base(input, init);
      metrics.openaiRequest({ endpoint, status: String(response.status), retry });
      return response;
    } catch (error) {
      metrics.openaiRequest({ endpoint, status: init?.signal?.aborted ? 'aborted' : 'error', retry });
      throw error;
    }
  };
}

/**
 * Counts what discord.js's REST manager reports. `response` comes for every HTTP response with the request's
 * `retries` (retries already made after 5xx or network errors); discord.js sends a request again after a 429 (it
 * waits out the Retry-After) and after a 5xx while it has retries left (`options.retries`, default 3). `rateLimited`
 * comes when it holds a request back because a bucket it knows is empty, before any 429.
 * discord.js clones each response for `response` listeners; the clone's body is never read here.
 */
export function watchDiscordRest(
  rest: Pick<REST, 'on' | 'options'>,
  metrics: Pick<Metrics, 'discordResponse' | 'discordRateLimitWait'>,
): void {
  rest.on('response', (request, response) => {
    const status = response.status;
    const retried =
      status === 429
        ? 'rate_limited'
        : status >= 500 && request.retries < rest.options.retries
          ? 'server_error'
          : undefined;
    metrics.discordResponse({ method: request.method, status, retried });
  });
  rest.on('rateLimited', (info) => metrics.discordRateLimitWait({ global: info.global }));
}
