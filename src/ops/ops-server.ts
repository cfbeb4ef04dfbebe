/**
 * The operator's HTTP endpoint (METRICS_PORT, off by default): Prometheus metrics and two probes.
 *
 * - `GET /metrics`: the text exposition (`?format=json`: prom-client's JSON, which the sharding manager aggregates).
 * - `GET /healthz`: liveness, 200 while the process runs and its event loop answers.
 * - `GET /readyz`: readiness, 200 when every check passes, else 503; the JSON body names each check and why it failed.
 *
 * Plain node:http: three routes do not need a framework.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../core/ports.ts';

/** How long one readiness check may take before it counts as failed. */
const CHECK_TIMEOUT_MS = 3000;

export interface OpsServerOptions {
  port: number;
  host: string;
  /** The body of /metrics in the asked format. */
  metrics(format: 'text' | 'json'): Promise<{ contentType: string; body: string }>;
  /** Readiness checks by name: each resolves when fine and rejects (with the reason) when not. */
  checks: Record<string, () => Promise<void>>;
  logger: Logger;
  checkTimeoutMs?: number;
}

export interface OpsServer {
  /** The port it listens on (the asked one). */
  readonly port: number;
  close(): Promise<void>;
}

export type CheckResult = { ok: true } | { ok: false; error: string };

export interface Readiness {
  ready: boolean;
  /** The names of the checks that failed. */
  failed: string[];
  checks: Record<string, CheckResult>;
}

/** Runs every check at once, each bounded by `timeoutMs`. */
export async function checkReadiness(
  checks: Record<string, () => Promise<void>>,
  timeoutMs = CHECK_TIMEOUT_MS,
): Promise<Readiness> {
  const entries = await Promise.all(
    Object.entries(checks).map(async ([name, check]): Promise<[string, CheckResult]> => {
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          check(),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
          }),
        ]);
        return [name, { ok: true }];
      } catch (error) {
        return [name, { ok: false, error: describe(error) }];
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  const failed = entries.filter(([, result]) => !result.ok).map(([name]) => name);
  return { ready: failed.length === 0, failed, checks: Object.fromEntries(entries) };
}

/** A short reason for a failed check: the error's message, and its cause's when it wraps one. */
function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
  return `${error.message}${cause}`.slice(0, 500);
}

function send(response: ServerResponse, status: number, contentType: string, body: string): void {
  response.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store' });
  response.end(body);
}

const json = (response: ServerResponse, status: number, value: unknown) =>
  send(response, status, 'application/json; charset=utf-8', `${JSON.stringify(value)}\n`);

/** Starts listening; rejects when the port cannot be bound (an operator who asked for metrics must hear of it). */
export async function startOpsServer(options: OpsServerOptions): Promise<OpsServer> {
  const { logger } = options;
  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.setHeader('allow', 'GET, HEAD');
      return json(response, 405, { error: 'method not allowed' });
    }
    switch (url.pathname) {
      case '/healthz':
        return json(response, 200, { status: 'ok' });
      case '/readyz': {
        const readiness = await checkReadiness(options.checks, options.checkTimeoutMs);
        if (!readiness.ready)
          logger.debug({ failed: readiness.failed, checks: readiness.checks }, 'not ready');
        return json(response, readiness.ready ? 200 : 503, readiness);
      }
      case '/metrics': {
        const format = url.searchParams.get('format') === 'json' ? 'json' : 'text';
        const { contentType, body } = await options.metrics(format);
        return send(response, 200, contentType, body);
      }
      default:
        return json(response, 404, { error: 'not found', routes: ['/metrics', '/healthz', '/readyz'] });
    }
  };
  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      logger.warn({ err: error, url: request.url }, 'the metrics endpoint failed to answer');
      if (!response.headersSent) json(response, 500, { error: 'internal error' });
      else response.destroy();
    });
  });
  // Probes and scrapes are short requests; an idle keep-alive connection must not hold close() up.
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (error) => logger.warn({ err: error }, 'metrics server error'));
  const port = (server.address() as AddressInfo).port;
  logger.info({ host: options.host, port }, 'metrics endpoint listening');
  return {
    port,
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
