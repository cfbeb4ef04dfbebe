import { afterEach, describe, expect, it } from 'vitest';
import type { Logger } from '../../src/core/ports.ts';
import { createMetrics, metricsBody } from '../../src/ops/metrics.ts';
import { type OpsServer, startOpsServer } from '../../src/ops/ops-server.ts';
import {
  reachableHost,
  type ShardTarget,
  scrapeShards,
  shardMetricsPort,
  shardReadyCheck,
} from '../../src/ops/shards.ts';
import { sample } from './scrape.ts';

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };
const servers: OpsServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

/** A shard's endpoint as a bot process serves it, on a port of its own. */
async function shard(id: string, ready: () => Promise<void> = async () => {}) {
  const metrics = createMetrics();
  const server = await startOpsServer({
    port: 0,
    host: '127.0.0.1',
    metrics: (format) => metricsBody(metrics, format),
    checks: { discord: ready, store: async () => {} },
    logger: silent,
  });
  servers.push(server);
  return { metrics, target: { shard: id, url: `http://127.0.0.1:${server.port}` } satisfies ShardTarget };
}

describe("the sharding manager's endpoint", () => {
  it('puts shard N on METRICS_PORT + 1 + N, and reaches a wildcard address on loopback', () => {
    expect([0, 1, 2].map((id) => shardMetricsPort(9464, id))).toEqual([9465, 9466, 9467]);
    expect(reachableHost('0.0.0.0')).toBe('127.0.0.1');
    expect(reachableHost('::')).toBe('[::1]');
    expect(reachableHost('10.0.0.5')).toBe('10.0.0.5');
    expect(reachableHost('fd00::5')).toBe('[fd00::5]');
  });

  it("serves every shard's metrics under one HELP and TYPE each, labelled by shard, with its own", async () => {
    const zero = await shard('0');
    const one = await shard('1');
    zero.metrics.telemetry.turn({
      backend: 'chat',
      model: 'm',
      outcome: 'done',
      queueWaitMs: 10,
      firstTokenMs: 100,
      totalMs: 900,
    });
    for (let i = 0; i < 2; i += 1)
      one.metrics.telemetry.turn({
        backend: 'chat',
        model: 'm',
        outcome: 'done',
        queueWaitMs: 10,
        firstTokenMs: 100,
        totalMs: 900,
      });
    const own = createMetrics().registry;
    const text = await scrapeShards([zero.target, one.target], own);

    expect(sample(text, 'threadfork_turns_total', { shard: '0', outcome: 'done' })).toBe(1);
    expect(sample(text, 'threadfork_turns_total', { shard: '1', outcome: 'done' })).toBe(2);
    expect(sample(text, 'threadfork_turns_total', { outcome: 'done' })).toBe(3);
    expect(sample(text, 'threadfork_turn_duration_seconds_bucket', { shard: '1', le: '1' })).toBe(2);
    // Process metrics of each process, the manager's included, none dropped or averaged.
    for (const id of ['0', '1', 'manager']) {
      expect(sample(text, 'process_start_time_seconds', { shard: id }), id).toBeGreaterThan(0);
      expect(sample(text, 'nodejs_eventloop_lag_seconds', { shard: id }), id).toBeDefined();
    }
    expect(sample(text, 'threadfork_shard_scrape_up', { shard: '0' })).toBe(1);
    expect(sample(text, 'threadfork_shard_scrape_up', { shard: '1' })).toBe(1);
    // Valid exposition: each metric family is described once.
    const types = text.split('\n').filter((line) => line.startsWith('# TYPE threadfork_turns_total '));
    expect(types).toEqual(['# TYPE threadfork_turns_total counter']);
  });

  it('leaves out a shard that does not answer, and says so', async () => {
    const zero = await shard('0');
    const gone = await shard('1');
    await servers.pop()!.close();
    const text = await scrapeShards([zero.target, gone.target], createMetrics().registry, {
      timeoutMs: 1000,
    });
    expect(sample(text, 'threadfork_shard_scrape_up', { shard: '0' })).toBe(1);
    expect(sample(text, 'threadfork_shard_scrape_up', { shard: '1' })).toBe(0);
    expect(sample(text, 'process_start_time_seconds', { shard: '1' })).toBeUndefined();
    expect(sample(text, 'process_start_time_seconds', { shard: '0' })).toBeGreaterThan(0);
  });

  it("is ready when a shard is, and names the shard's failed checks when it is not", async () => {
    let connected = false;
    const zero = await shard('0', async () => {
      if (!connected) throw new Error('gateway shard 0 is Connecting');
    });
    const check = shardReadyCheck(zero.target);
    await expect(check()).rejects.toThrow('not ready: discord (gateway shard 0 is Connecting)');
    connected = true;
    await expect(check()).resolves.toBeUndefined();
    await expect(shardReadyCheck({ shard: '9', url: 'http://127.0.0.1:1' }, 500)()).rejects.toThrow(
      'no answer from http://127.0.0.1:1',
    );
  });
});
