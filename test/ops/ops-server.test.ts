import { afterEach, describe, expect, it } from 'vitest';
import type { Logger } from '../../src/core/ports.ts';
import { createMetrics, metricsBody } from '../../src/ops/metrics.ts';
import { type OpsServer, startOpsServer } from '../../src/ops/ops-server.ts';
import { sample } from './scrape.ts';

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };
const servers: OpsServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function start(checks: Record<string, () => Promise<void>>, checkTimeoutMs = 3000) {
  const metrics = createMetrics({ defaultMetrics: false });
  const server = await startOpsServer({
    port: 0,
    host: '127.0.0.1',
    metrics: (format) => metricsBody(metrics, format),
    checks,
    logger: silent,
    checkTimeoutMs,
  });
  servers.push(server);
  const get = (path: string, init?: RequestInit) => fetch(`http://127.0.0.1:${server.port}${path}`, init);
  return { metrics, server, get };
}

describe('the ops endpoint', () => {
  it('serves the metrics as Prometheus text, or as JSON when asked', async () => {
    const { metrics, get } = await start({});
    metrics.telemetry.error({ kind: 'upstream_timeout' });
    const text = await get('/metrics');
    expect(text.status).toBe(200);
    expect(text.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(sample(await text.text(), 'threadfork_errors_total', { kind: 'upstream_timeout' })).toBe(1);
    const json = await get('/metrics?format=json');
    expect(json.headers.get('content-type')).toMatch(/^application\/json/);
    const body = (await json.json()) as { name: string; values: unknown[] }[];
    expect(body.find((m) => m.name === 'threadfork_errors_total')?.values).toEqual([
      { value: 1, labels: { kind: 'upstream_timeout' } },
    ]);
  });

  it('is live whatever the checks say, and ready only when every check passes, naming the ones that fail', async () => {
    let storeUp = false;
    const { get } = await start({
      discord: async () => {},
      store: async () => {
        if (!storeUp) throw new Error('threadfork is unavailable', { cause: new Error('ECONNREFUSED') });
      },
    });
    expect((await get('/healthz')).status).toBe(200);
    const notReady = await get('/readyz');
    expect(notReady.status).toBe(503);
    expect(await notReady.json()).toEqual({
      ready: false,
      failed: ['store'],
      checks: {
        discord: { ok: true },
        store: { ok: false, error: 'threadfork is unavailable: ECONNREFUSED' },
      },
    });
    storeUp = true;
    const ready = await get('/readyz');
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({
      ready: true,
      failed: [],
      checks: { discord: { ok: true }, store: { ok: true } },
    });
  });

  it('fails a check that does not answer in time', async () => {
    const { get } = await start({ store: () => new Promise(() => {}) }, 100);
    const response = await get('/readyz');
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({
      failed: ['store'],
      checks: { store: { ok: false, error: 'no answer within 100 ms' } },
    });
  });

  it('answers 404 for other paths and 405 for other methods', async () => {
    const { get } = await start({});
    expect((await get('/')).status).toBe(404);
    const post = await get('/metrics', { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });

  it('refuses to start on a port that is taken, and frees its port on close', async () => {
    const { server } = await start({});
    await expect(
      startOpsServer({
        port: server.port,
        host: '127.0.0.1',
        metrics: async () => ({ contentType: 'text/plain', body: '' }),
        checks: {},
        logger: silent,
      }),
    ).rejects.toThrow(/EADDRINUSE/);
    // A keep-alive connection does not hold close() up.
    await fetch(`http://127.0.0.1:${server.port}/healthz`, { keepalive: true });
    await server.close();
    servers.splice(servers.indexOf(server), 1);
    await expect(fetch(`http://127.0.0.1:${server.port}/healthz`)).rejects.toThrow();
  });
});
