/**
 * The bot's Prometheus metrics: the core's Telemetry, the store, OpenAI and Discord REST instrumentation
 * (src/ops/instrument.ts) and prom-client's default process metrics, all in one Registry per call. No metric goes to
 * prom-client's global registry, so a test can make several and a process can be scraped for exactly what it did.
 */
import {
  Counter,
  collectDefaultMetrics,
  Gauge,
  Histogram,
  type MetricObjectWithValues,
  type MetricValue,
  Registry,
} from 'prom-client';
import type { Telemetry } from '../core/telemetry.ts';

const PREFIX = 'threadfork_';

/** Seconds; a queue wait ranges from nothing to several minutes behind a vote. */
const QUEUE_WAIT_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
const FIRST_TOKEN_BUCKETS = [0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60];
const TURN_BUCKETS = [0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300];
/** Store operations: sub-millisecond on SQLite, a few ms on Redis, up to the 5 s command timeout when it is down. */
const STORE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

export interface Metrics {
  readonly registry: Registry;
  /** What the core reports; give it to the core services as their `telemetry`. */
  readonly telemetry: Telemetry;
  /** One store operation (get, set, delete, update) and how long it took. */
  storeOperation(event: { operation: string; outcome: 'ok' | 'error'; seconds: number }): void;
  /** One HTTP attempt of the openai SDK: `status` is the HTTP status, or `error` / `aborted` without a response. */
  openaiRequest(event: { endpoint: string; status: string; retry: boolean }): void;
  /** One HTTP response Discord's REST API gave; `retried` when discord.js sends the request again because of it. */
  discordResponse(event: {
    method: string;
    status: number;
    retried: 'rate_limited' | 'server_error' | undefined;
  }): void;
  /** discord.js held a request back because a rate-limit bucket it knows was empty (no 429 was received). */
  discordRateLimitWait(event: { global: boolean }): void;
  /** The Prometheus text exposition. */
  text(): Promise<string>;
  /** The same as prom-client's JSON (what the sharding manager aggregates). */
  json(): Promise<MetricsJson>;
  readonly contentType: string;
}

/** Keeps a label value short and printable whatever a caller passes (error codes, reasons, model names). */
function label(value: string): string {
  const clean = value.replace(/[^\w.:/-]/g, '_').slice(0, 80);
  return clean === '' ? 'unknown' : clean;
}

export function createMetrics(options: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  const registers = [registry];

  const turns = new Counter({
    name: `${PREFIX}turns_total`,
    help: 'Turns (one reply to waiting messages) that ended, by backend and outcome (done, stopped, failed).',
    labelNames: ['backend', 'outcome'] as const,
    registers,
  });
  const queueWait = new Histogram({
    name: `${PREFIX}turn_queue_wait_seconds`,
    help: "From the arrival of a turn's oldest message to the start of the turn.",
    labelNames: ['backend', 'outcome'] as const,
    buckets: QUEUE_WAIT_BUCKETS,
    registers,
  });
  const firstToken = new Histogram({
    name: `${PREFIX}turn_first_token_seconds`,
    help: "From the start of a turn to the model's first text (turns that got none are not counted).",
    labelNames: ['backend', 'outcome'] as const,
    buckets: FIRST_TOKEN_BUCKETS,
    registers,
  });
  const turnDuration = new Histogram({
    name: `${PREFIX}turn_duration_seconds`,
    help: 'From the start of a turn to the end of its reply, shown in Discord (the queue wait not included).',
    labelNames: ['backend', 'outcome'] as const,
    buckets: TURN_BUCKETS,
    registers,
  });
  const tokens = new Counter({
    name: `${PREFIX}tokens_total`,
    help: 'Tokens billed, by model and kind: input (uncached prompt), cached_input (prompt served from cache), output.',
    labelNames: ['model', 'kind'] as const,
    registers,
  });
  const forks = new Counter({
    name: `${PREFIX}alternatives_requests_total`,
    help: 'Forks (/alternatives or automatic alternatives) by outcome: opened a vote, failed (all alternatives), cancelled.',
    labelNames: ['outcome'] as const,
    registers,
  });
  const alternatives = new Counter({
    name: `${PREFIX}alternatives_total`,
    help: 'Alternatives asked for in forks, by the outcome of their fork.',
    labelNames: ['outcome'] as const,
    registers,
  });
  const votes = new Counter({
    name: `${PREFIX}votes_total`,
    help: 'Votes that ended: closed (reason quorum, close, moderator, deadline) or cancelled (reason why).',
    labelNames: ['outcome', 'reason'] as const,
    registers,
  });
  const errors = new Counter({
    name: `${PREFIX}errors_total`,
    help: 'Failures people saw, by kind (the error code: upstream_rate_limited, unavailable, ...).',
    labelNames: ['kind'] as const,
    registers,
  });
  // The last depth reported per thread; only threads with waiting messages are kept.
  const waiting = new Map<string, number>();
  new Gauge({
    name: `${PREFIX}queue_waiting_messages`,
    help: 'Messages waiting in the inboxes of threads, the ones being answered included (as this process last saw them).',
    registers,
    collect() {
      let sum = 0;
      for (const count of waiting.values()) sum += count;
      this.set(sum);
    },
  });
  new Gauge({
    name: `${PREFIX}queue_threads_waiting`,
    help: 'Threads with at least one waiting message (as this process last saw them).',
    registers,
    collect() {
      this.set(waiting.size);
    },
  });
  const storeDuration = new Histogram({
    name: `${PREFIX}store_operation_duration_seconds`,
    help: 'Store operations (get, set, delete, update) by outcome (ok, error) and how long they took.',
    labelNames: ['operation', 'outcome'] as const,
    buckets: STORE_BUCKETS,
    registers,
  });
  const openaiRequests = new Counter({
    name: `${PREFIX}openai_requests_total`,
    help: 'HTTP requests the openai SDK sent (each retry counts), by endpoint and status (error: no response).',
    labelNames: ['endpoint', 'status'] as const,
    registers,
  });
  const openaiRetries = new Counter({
    name: `${PREFIX}openai_retries_total`,
    help: 'Requests the openai SDK sent again after a failure (429, 5xx, timeout, connection error).',
    labelNames: ['endpoint'] as const,
    registers,
  });
  const discordResponses = new Counter({
    name: `${PREFIX}discord_rest_responses_total`,
    help: "Responses from Discord's REST API, by method and status (429: rate limited).",
    labelNames: ['method', 'status'] as const,
    registers,
  });
  const discordRetries = new Counter({
    name: `${PREFIX}discord_rest_retries_total`,
    help: 'Requests discord.js sends again, by reason: rate_limited (a 429), server_error (a 5xx).',
    labelNames: ['reason'] as const,
    registers,
  });
  const discordWaits = new Counter({
    name: `${PREFIX}discord_rest_rate_limit_waits_total`,
    help: 'Requests discord.js held back until a rate-limit bucket it knew was empty reset (global: the 50/s limit).',
    labelNames: ['global'] as const,
    registers,
  });

  const telemetry: Telemetry = {
    turn(event) {
      const labels = { backend: label(event.backend), outcome: event.outcome };
      turns.inc(labels);
      queueWait.observe(labels, Math.max(0, event.queueWaitMs) / 1000);
      if (event.firstTokenMs !== undefined)
        firstToken.observe(labels, Math.max(0, event.firstTokenMs) / 1000);
      turnDuration.observe(labels, Math.max(0, event.totalMs) / 1000);
    },
    tokens(event) {
      if (event.count < 0 || !Number.isFinite(event.count)) return;
      tokens.inc({ model: label(event.model), kind: event.kind }, event.count);
    },
    alternatives(event) {
      forks.inc({ outcome: event.outcome });
      alternatives.inc({ outcome: event.outcome }, Math.max(0, event.count));
    },
    vote(event) {
      votes.inc({ outcome: event.outcome, reason: label(event.reason) });
    },
    error(event) {
      errors.inc({ kind: label(event.kind) });
    },
    queueDepth(event) {
      if (event.waiting > 0) waiting.set(event.threadId, event.waiting);
      else waiting.delete(event.threadId);
    },
  };

  return {
    registry,
    telemetry,
    storeOperation(event) {
      storeDuration.observe({ operation: event.operation, outcome: event.outcome }, event.seconds);
    },
    openaiRequest(event) {
      const endpoint = label(event.endpoint);
      openaiRequests.inc({ endpoint, status: event.status });
      if (event.retry) openaiRetries.inc({ endpoint });
    },
    discordResponse(event) {
      discordResponses.inc({ method: event.method.toUpperCase(), status: String(event.status) });
      if (event.retried) discordRetries.inc({ reason: event.retried });
    },
    discordRateLimitWait(event) {
      discordWaits.inc({ global: String(event.global) });
    },
    text: () => registry.metrics(),
    json: () => registry.getMetricsAsJSON(),
    contentType: registry.contentType,
  };
}

/** /metrics for one process: the text exposition, or prom-client's JSON for the sharding manager. */
export async function metricsBody(
  metrics: Metrics,
  format: 'text' | 'json',
): Promise<{ contentType: string; body: string }> {
  if (format === 'json')
    return { contentType: 'application/json; charset=utf-8', body: JSON.stringify(await metrics.json()) };
  return { contentType: metrics.contentType, body: await metrics.text() };
}
