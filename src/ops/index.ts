/** The ops endpoint of one bot process (`npm start`, or one shard): what src/app.ts wires when METRICS_PORT is set. */
import type { Client } from 'discord.js';
import type { Logger, Store } from '../core/ports.ts';
import { gatewayCheck, storeCheck } from './checks.ts';
import { watchDiscordRest } from './instrument.ts';
import { type Metrics, metricsBody } from './metrics.ts';
import { type OpsServer, startOpsServer } from './ops-server.ts';

export { countingFetch, instrumentStore } from './instrument.ts';
export { createMetrics } from './metrics.ts';

/**
 * Counts the client's REST traffic and serves /metrics, /healthz and /readyz (ready: every gateway shard connected
 * and `store` answering). Start it before logging in, so a liveness probe answers during start-up.
 */
export async function serveBotOps(options: {
  port: number;
  host: string;
  metrics: Metrics;
  client: Client;
  /** The store as opened, not the instrumented one: probes are not traffic. */
  store: Store;
  logger: Logger;
}): Promise<OpsServer> {
  const { metrics, client, store } = options;
  watchDiscordRest(client.rest, metrics);
  return startOpsServer({
    port: options.port,
    host: options.host,
    metrics: (format) => metricsBody(metrics, format),
    checks: { discord: gatewayCheck(client), store: storeCheck(store) },
    logger: options.logger,
  });
}
