// HTTP front: /api/v10 routing, auth, body parsing (JSON and multipart), rate limits, injected failures,
// request recording, and attachment downloads.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Ctx, later } from './context.ts';
import { ApiError, Errors } from './errors.ts';
import { attachmentSignature, type FileInput } from './messages.ts';
import { GlobalLimiter, RateLimiter } from './ratelimit.ts';
import { hashOf, majorOf, matchRoute, type RouteDef } from './router.ts';
import { appRoutes } from './routes-app.ts';
import { channelRoutes } from './routes-channels.ts';
import { webhookRoutes } from './routes-webhooks.ts';
import { validateBody } from './spec.ts';
import type { AttachmentDownload, FailureSpec, RecordedRequest } from './types.ts';

const ROUTES: RouteDef[] = [...appRoutes, ...channelRoutes, ...webhookRoutes];

interface Failure extends FailureSpec {
  left: number;
}

export class RestServer {
  requests: RecordedRequest[] = [];
  attachmentDownloads: AttachmentDownload[] = [];
  #ctx: Ctx;
  #limiter = new RateLimiter();
  #global: GlobalLimiter;
  #failures: Failure[] = [];

  constructor(ctx: Ctx) {
    this.#ctx = ctx;
    this.#global = new GlobalLimiter(ctx.config.globalRequestsPerSecond);
  }

  injectFailure(f: FailureSpec): void {
    this.#failures.push({ ...f, left: f.times ?? 1 });
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    this.#handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) {
        const text = JSON.stringify({ message: String(err), code: 0 });
        res.writeHead(500, { 'Content-Type': 'application/json' });
        res.end(text);
      }
    });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = (req.method ?? 'GET').toUpperCase();
    const raw = await readBody(req);
    if (url.pathname.startsWith('/attachments/')) {
      this.#serveAttachment(url, res);
      return;
    }
    const apiPath = url.pathname.replace(/^\/api(\/v\d+)?/, '');
    const query: Record<string, string> = {};
    for (const [k, v] of url.searchParams) query[k] = v;
    const segments = apiPath
      .split('/')
      .slice(1)
      .map((s) => {
        try {
          return decodeURIComponent(s);
        } catch {
          return s;
        }
      });
    const { match, pathExists } = matchRoute(ROUTES, method, segments);
    const routeName = match ? `${method} ${match.def.path}` : `${method} ${apiPath}`;
    let headers: Record<string, string> = {};
    let status = 500;
    let body: unknown;
    let recordedBody: unknown;
    try {
      if (!url.pathname.startsWith('/api/') || !match) {
        throw pathExists ? Errors.methodNotAllowed() : Errors.notFound();
      }
      const { def, params } = match;
      const parsed = await parseBody(req.headers['content-type'], raw, method);
      recordedBody = parsed.recorded;
      const bucket = def.bucket?.(params, this.#ctx) ?? {
        key: `${def.method} ${def.path}:${majorOf(params)}`,
        hash: hashOf(`${def.method} ${def.path}`),
        ...this.#ctx.config.defaultLimit,
      };
      if (def.auth === 'bot' && !this.#authorized(req.headers.authorization)) throw Errors.unauthorized();
      // The global limit counts the bot's own requests first: one it refuses takes nothing from the route's bucket.
      const globalRefusal = def.auth === 'bot' ? this.#global.take() : undefined;
      const taken = globalRefusal ? undefined : this.#limiter.take(bucket);
      headers = globalRefusal?.headers ?? taken?.headers ?? {};
      if (globalRefusal) {
        status = 429;
        body = globalRefusal.body;
      } else if (taken && !taken.ok) {
        status = 429;
        body = {
          message: 'You are being rate limited.',
          retry_after: taken.retryAfterMs / 1000,
          global: false,
        };
      } else {
        const failure = this.#takeFailure(routeName);
        if (failure) {
          status = failure.status;
          if (failure.status === 429) {
            const retryAfter = (failure.retryAfterMs ?? 100) / 1000;
            headers = { ...headers, 'Retry-After': retryAfter.toFixed(3), 'X-RateLimit-Scope': 'user' };
            body = {
              message: failure.message ?? 'You are being rate limited.',
              retry_after: retryAfter,
              global: false,
            };
          } else {
            body = {
              message: failure.message ?? `${failure.status}: Injected failure`,
              code: failure.code ?? 0,
            };
          }
        } else {
          if (def.schema && parsed.body !== undefined) validateBody(def.schema, parsed.body);
          const out = await def.handle({
            ctx: this.#ctx,
            params,
            query: url.searchParams,
            body: parsed.body,
            files: parsed.files,
          });
          status = out.status;
          body = out.body;
        }
      }
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      status = err.status;
      body = err.toJSON();
      headers = { ...headers, ...err.extraHeaders };
    }
    this.#send(res, status, body, headers);
    const rec: RecordedRequest = {
      method,
      route: routeName,
      path: apiPath,
      query,
      body: recordedBody,
      status,
      at: Date.now(),
      headers,
    };
    this.requests.push(rec);
    this.#ctx.store.changed();
  }

  #authorized(header: string | undefined): boolean {
    return header === `Bot ${this.#ctx.botToken}`;
  }

  #takeFailure(routeName: string): Failure | undefined {
    const f = this.#failures.find((x) => x.route === routeName && x.left > 0);
    if (!f) return undefined;
    f.left--;
    if (f.left <= 0) this.#failures.splice(this.#failures.indexOf(f), 1);
    return f;
  }

  #send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string>): void {
    if (body === undefined || status === 204) {
      res.writeHead(status, headers);
      res.end();
      return;
    }
    const text = JSON.stringify(body);
    res.writeHead(status, {
      ...headers,
      'Content-Type': 'application/json',
      'Content-Length': String(Buffer.byteLength(text)),
    });
    res.end(text);
  }

  /** Discord's CDN: the URL must carry its signature, and works until it expires (then 404, as Discord answers). */
  #serveAttachment(url: URL, res: ServerResponse): void {
    const id = url.pathname.split('/')[3] ?? '';
    const a = this.#ctx.store.attachments.get(id);
    const ex = url.searchParams.get('ex') ?? '';
    const is = url.searchParams.get('is') ?? '';
    const signed = url.searchParams.get('hm') === attachmentSignature(url.pathname, ex, is);
    if (!a || !signed || Date.now() >= a.expiresAt || Date.now() >= Number.parseInt(ex, 16) * 1000) {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('Not Found');
      return;
    }
    const status = a.serve?.status ?? 200;
    this.attachmentDownloads.push({ attachmentId: a.id, filename: a.filename, status, at: Date.now() });
    const answer = () => {
      if (res.destroyed) return;
      if (status !== 200) {
        res.writeHead(status, { 'Content-Type': 'text/plain' });
        res.end(`status ${status}`);
        return;
      }
      res.writeHead(200, {
        'Content-Type': a.contentType ?? 'application/octet-stream',
        'Content-Length': String(a.data.length),
      });
      res.end(a.data);
    };
    const delayMs = a.serve?.delayMs ?? 0;
    if (delayMs > 0) later(this.#ctx, delayMs, answer);
    else answer();
  }
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

interface ParsedBody {
  body: unknown;
  files: FileInput[];
  recorded: unknown;
}

async function parseBody(contentType: string | undefined, raw: Buffer, method: string): Promise<ParsedBody> {
  if (raw.length === 0) return { body: undefined, files: [], recorded: undefined };
  const ct = (contentType ?? '').toLowerCase();
  if (ct.startsWith('multipart/form-data')) {
    const form = await new Request('http://localhost/', {
      method,
      headers: { 'content-type': contentType ?? '' },
      body: raw,
    }).formData();
    let body: unknown = {};
    const files: FileInput[] = [];
    for (const [key, value] of form) {
      if (key === 'payload_json' && typeof value === 'string') {
        body = parseJson(value);
      } else if (typeof value !== 'string') {
        const f: FileInput = { filename: value.name, data: Buffer.from(await value.arrayBuffer()) };
        if (value.type) f.contentType = value.type;
        files.push(f);
      }
    }
    const recorded = {
      ...(typeof body === 'object' && body !== null ? body : {}),
      files: files.map((f) => ({ filename: f.filename, size: f.data.length })),
    };
    return { body, files, recorded };
  }
  if (ct.startsWith('application/x-www-form-urlencoded')) {
    const body = Object.fromEntries(new URLSearchParams(raw.toString('utf8')));
    return { body, files: [], recorded: body };
  }
  const body = parseJson(raw.toString('utf8'));
  return { body, files: [], recorded: body };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw Errors.invalidJson();
  }
}
