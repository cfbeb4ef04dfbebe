/**
 * The sharding manager's ops endpoint (`npm run start:sharded` with METRICS_PORT). Each shard is a bot process with
 * its own endpoint on METRICS_PORT + 1 + its id; the manager serves on METRICS_PORT:
 *
 * - /metrics: every shard's metrics with a `shard` label, and the manager's own process metrics (`shard="manager"`).
 *   At each scrape the manager asks every shard for its metrics as prom-client JSON (`/metrics?format=json`), adds
 *   the label and renders them with prom-client's AggregatorRegistry.aggregate (which groups each metric's samples
 *   under one HELP/TYPE, as the text format requires). Its cluster mode (IPC with cluster workers) does not apply to
 *   ShardingManager's child processes, and concatenating the shards' text would repeat every HELP/TYPE.
 *   `threadfork_shard_scrape_up{shard}` says whether each shard answered (a shard that did not is left out).
 * - /readyz: ready when every shard's /readyz is; a shard's failure names its failed checks.
 * - /healthz: the manager process runs.
 *
 * HTTP between the processes (rather than IPC through discord.js's broadcastEval) keeps a shard the same program
 * as `npm start`, and lets Prometheus scrape a shard directly when the manager is not wanted.
 */
import { AggregatorRegistry, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { Logger } from '../core/ports.ts';
import type { MetricsJson } from './metrics.ts';
import { type OpsServer, startOpsServer } from './ops-server.ts';

/** How long the manager waits for one shard's answer (a scrape or a probe). */
const SHARD_TIMEOUT_MS = 2500;

/** The port of shard `shardId`'s own endpoint. */
export function shardMetricsPort(metricsPort: number, shardId: number): number {
  return metricsPort + 1 + shardId;
}

/** Where to reach an endpoint that listens on `host`: a wildcard address is reached on loopback. */
export function reachableHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

export interface ShardTarget {
  shard: string;
  /** `http://host:port` of the shard's endpoint. */
  url: string;
}

/** Fetches one shard's metrics as JSON, each sample labelled with the shard. */
async function shardMetrics(target: ShardTarget, timeoutMs: number): Promise<MetricsJson> {
  const response = await fetch(`${target.url}/metrics?format=json`, {
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  const metrics = (await response.json()) as MetricsJson;
  return label(metrics, target.shard);
}

/**
 * Adds `shard` to every sample. Every metric is then summed by its labels, which, the shard label being different
 * for each process, keeps each sample as it is (prom-client's own aggregators would drop process_start_time_seconds
 * and average the event loop lag across processes).
 */
function label(metrics: MetricsJson, shard: string): MetricsJson {
  return metrics.map((metric) => ({
    ...metric,
    aggregator: 'sum',
    values: metric.values.map((value) => ({ ...value, labels: { ...value.labels, shard } })),
  }));
}

/** The text exposition of every shard's metrics and the manager's own, and which shards answered. */
export async function scrapeShards(
  targets: readonly ShardTarget[],
  own: Registry,
  options: { timeoutMs?: number; logger?: Logger } = {},
): Promise<string> {
  const timeoutMs = options.timeoutMs ?? SHARD_TIMEOUT_MS;
  const results = await Promise.allSettled(targets.map((target) => shardMetrics(target, timeoutMs)));
  // A registry of its own for each scrape: a shard that is gone is not reported forever.
  const upRegistry = new Registry();
  const up = new Gauge({
    name: 'threadfork_shard_scrape_up',
    help: "1 when the shard's metrics were read for this scrape, 0 when it did not answer (its metrics are missing).",
    labelNames: ['shard'] as const,
    registers: [upRegistry],
  });
  for (const [index, result] of results.entries())
    up.set({ shard: targets[index]!.shard }, result.status === 'fulfilled' ? 1 : 0);
  for (const [index, result] of results.entries()) {
    if (result.status === 'rejected')
      options.logger?.debug(
        { err: result.reason, shard: targets[index]!.shard },
        'a shard did not answer for its metrics',
      );
  }
  const all = [
    label(await own.getMetricsAsJSON(), 'manager'),
    ...results.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : [])),
    await upRegistry.getMetricsAsJSON(),
  ];
  return AggregatorRegistry.aggregate(all).metrics();
}

/** A readiness check for one shard: its own /readyz, whose failed checks become the reason. */
export function shardReadyCheck(target: ShardTarget, timeoutMs = SHARD_TIMEOUT_MS): () => Promise<void> {
  return async () => {
    let response: Response;
    try {
      response = await fetch(`${target.url}/readyz`, { signal: AbortSignal.timeout(timeoutMs) });
    } catch (error) {
      throw new Error(`no answer from ${target.url}`, { cause: error });
    }
    if (response.ok) return;
    const body = (await response.json().catch(() => undefined)) as
      | { checks?: Record<string, { ok: boolean; error?: string }> }
      | undefined;
    const failed = Object.entries(body?.checks ?? {})
      .filter(([, check]) => !check.ok)
      .map(([name, check]) => `${name} (${check.error ?? 'failed'})`);
    throw new Error(`not ready: ${failed.join(', ') || `HTTP ${response.status}`}`);
  };
}

/** Starts the manager's endpoint for the shards it runs (`shardIds`: SHARD_IDS, or every shard). */
export async function serveManagerOps(options: {
  port: number;
  host: string;
  shardIds: readonly number[];
  logger: Logger;
}): Promise<OpsServer> {
  const own = new Registry();
  collectDefaultMetrics({ register: own });
  const host = reachableHost(options.host);
  const targets: ShardTarget[] = options.shardIds.map((id) => ({
    shard: String(id),
    url: `http://${host}:${shardMetricsPort(options.port, id)}`,
  }));
  return startOpsServer({
    port: options.port,
    host: options.host,
    async metrics(format) {
      if (format === 'json')
        return {
          contentType: 'application/json; charset=utf-8',
          body: JSON.stringify(await own.getMetricsAsJSON()),
        };
      return {
        contentType: own.contentType,
        body: await scrapeShards(targets, own, { logger: options.logger }),
      };
    },
    checks: Object.fromEntries(targets.map((target) => [`shard ${target.shard}`, shardReadyCheck(target)])),
    logger: options.logger,
  });
}
