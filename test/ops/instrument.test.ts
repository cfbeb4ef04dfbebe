import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REST } from 'discord.js';
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import {
  countingFetch,
  instrumentStore,
  openaiEndpoint,
  watchDiscordRest,
} from '../../src/ops/instrument.ts';
import { createMetrics } from '../../src/ops/metrics.ts';
import { openStore } from '../../src/store/index.ts';
import { sample } from './scrape.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A local HTTP server answering each request with the next scripted handler (the last one repeats). */
async function scriptedServer(
  script: ((request: IncomingMessage, response: ServerResponse) => void)[],
): Promise<{ url: string; paths: string[] }> {
  const paths: string[] = [];
  const server: Server = createServer((request, response) => {
    paths.push(request.url ?? '');
    const handler = script[Math.min(paths.length - 1, script.length - 1)]!;
    request.resume();
    request.on('end', () => handler(request, response));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, paths };
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  ((_request: IncomingMessage, response: ServerResponse) => {
    response.writeHead(status, { 'content-type': 'application/json', ...headers });
    response.end(JSON.stringify(body));
  }) satisfies (request: IncomingMessage, response: ServerResponse) => void;

describe('store instrumentation', () => {
  it('times every operation of a real store by operation and outcome, and changes nothing it returns', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'threadfork-ops-'));
    const store = openStore(`sqlite://${join(dir, 'store.sqlite')}`);
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const metrics = createMetrics({ defaultMetrics: false });
    const timed = instrumentStore(store, metrics);

    await timed.set('a', { n: 1 });
    expect(await timed.get('a')).toEqual({ n: 1 });
    expect(await timed.update<{ n: number }>('a', (v) => ({ n: (v?.n ?? 0) + 1 }))).toEqual({ n: 2 });
    await timed.delete('a');
    expect(await timed.get('a')).toBeUndefined();
    await timed.close();
    // A closed store fails: the failure goes through unchanged, and is timed as an error.
    await expect(timed.get('a')).rejects.toThrow();

    const text = await metrics.text();
    const count = (operation: string, outcome: string) =>
      sample(text, 'threadfork_store_operation_duration_seconds_count', { operation, outcome });
    expect(count('set', 'ok')).toBe(1);
    expect(count('get', 'ok')).toBe(2);
    expect(count('update', 'ok')).toBe(1);
    expect(count('delete', 'ok')).toBe(1);
    expect(count('get', 'error')).toBe(1);
  });
});

describe('openai instrumentation', () => {
  it('names the endpoint by the first path segment after the base path, never by an id', () => {
    expect(openaiEndpoint('https://api.openai.com/v1/responses', '/v1')).toBe('responses');
    expect(openaiEndpoint('http://h/api/v1/conversations/conv_123/items?limit=20', '/api/v1/')).toBe(
      'conversations',
    );
    expect(openaiEndpoint('http://h/v1/chat/completions', '/v1')).toBe('chat');
    expect(openaiEndpoint('not a url', '/v1')).toBe('unknown');
  });

  it("counts each attempt of the real SDK by status, and the SDK's retries after a 429 and a 500", async () => {
    const server = await scriptedServer([
      json(429, { error: { message: 'slow down', type: 'rate_limit' } }, { 'retry-after-ms': '1' }),
      json(500, { error: { message: 'oops' } }, { 'retry-after-ms': '1' }),
      json(200, { id: 'conv_1', object: 'conversation', created_at: 0, metadata: {} }),
    ]);
    const metrics = createMetrics({ defaultMetrics: false });
    const baseURL = `${server.url}/v1`;
    const openai = new OpenAI({
      apiKey: 'sk-test',
      baseURL,
      maxRetries: 2,
      fetch: countingFetch(metrics, { baseUrl: baseURL }),
    });
    await openai.conversations.create({});
    expect(server.paths).toEqual(['/v1/conversations', '/v1/conversations', '/v1/conversations']);

    const text = await metrics.text();
    const requests = (status: string) =>
      sample(text, 'threadfork_openai_requests_total', { endpoint: 'conversations', status });
    expect(requests('429')).toBe(1);
    expect(requests('500')).toBe(1);
    expect(requests('200')).toBe(1);
    expect(sample(text, 'threadfork_openai_retries_total', { endpoint: 'conversations' })).toBe(2);
  });

  it('counts a request without a response as error, and one the caller stopped as aborted', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const failing = countingFetch(metrics, {
      baseUrl: 'http://127.0.0.1:9/v1',
      fetch: () => Promise.reject(new TypeError('fetch failed')),
    });
    await expect(failing('http://127.0.0.1:9/v1/responses', {})).rejects.toThrow('fetch failed');
    const controller = new AbortController();
    controller.abort();
    await expect(
      failing('http://127.0.0.1:9/v1/responses', {
        signal: controller.signal,
        headers: { 'X-Stainless-Retry-Count': '1' },
      }),
    ).rejects.toThrow();
    const text = await metrics.text();
    expect(sample(text, 'threadfork_openai_requests_total', { endpoint: 'responses', status: 'error' })).toBe(
      1,
    );
    expect(
      sample(text, 'threadfork_openai_requests_total', { endpoint: 'responses', status: 'aborted' }),
    ).toBe(1);
    expect(sample(text, 'threadfork_openai_retries_total', { endpoint: 'responses' })).toBe(1);
  });
});

describe('Discord REST instrumentation', () => {
  it("counts the real REST manager's responses by status, its retries after a 429 and a 5xx, and its waits", async () => {
    const bucket = { 'x-ratelimit-bucket': 'b1', 'x-ratelimit-limit': '5' };
    const server = await scriptedServer([
      json(
        429,
        { message: 'You are being rate limited.', retry_after: 0.01, global: false },
        { ...bucket, 'retry-after': '0' },
      ),
      json(502, { message: 'bad gateway' }, bucket),
      json(200, [], { ...bucket, 'x-ratelimit-remaining': '4', 'x-ratelimit-reset-after': '1' }),
      // The bucket is now empty for 300 ms: the next request waits (a 'rateLimited' event) instead of getting a 429.
      json(200, [], { ...bucket, 'x-ratelimit-remaining': '0', 'x-ratelimit-reset-after': '0.3' }),
      json(200, [], { ...bucket, 'x-ratelimit-remaining': '4', 'x-ratelimit-reset-after': '1' }),
    ]);
    const metrics = createMetrics({ defaultMetrics: false });
    const rest = new REST({ api: server.url, retries: 3, offset: 0 }).setToken('token');
    watchDiscordRest(rest, metrics);

    // The first request is sent three times (429, 502, 200); discord.js learns the bucket from its headers.
    for (let i = 0; i < 3; i += 1) await rest.get('/channels/123456789012345678/messages');
    expect(server.paths).toHaveLength(5);

    const text = await metrics.text();
    const responses = (status: string) =>
      sample(text, 'threadfork_discord_rest_responses_total', { method: 'GET', status });
    expect(responses('429')).toBe(1);
    expect(responses('502')).toBe(1);
    expect(responses('200')).toBe(3);
    expect(sample(text, 'threadfork_discord_rest_retries_total', { reason: 'rate_limited' })).toBe(1);
    expect(sample(text, 'threadfork_discord_rest_retries_total', { reason: 'server_error' })).toBe(1);
    expect(sample(text, 'threadfork_discord_rest_rate_limit_waits_total', { global: 'false' })).toBe(1);
  });
});
