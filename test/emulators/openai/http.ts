/** Small node:http helpers: reading JSON bodies, sending JSON and server-sent events the way OpenAI does. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type ApiError, badRequest } from './errors.ts';
import { newRequestId } from './ids.ts';

export interface RawBody {
  bytes: number;
  text: string;
}

export function readBody(req: IncomingMessage): Promise<RawBody> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    req.on('data', (c: Buffer) => {
      chunks.push(c);
      bytes += c.length;
    });
    req.on('end', () => resolve({ bytes, text: Buffer.concat(chunks).toString('utf8') }));
    req.on('error', reject);
  });
}

export const INVALID_JSON_MESSAGE =
  "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)";

/** undefined for an empty body; throws a 400 ApiError for invalid JSON. */
export function parseJson(text: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw badRequest(INVALID_JSON_MESSAGE);
  }
}

function baseHeaders(extra: Record<string, string> = {}): Record<string, string> {
  return {
    'x-request-id': newRequestId(),
    'openai-version': '2020-10-01',
    'openai-processing-ms': '1',
    ...extra,
  };
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...baseHeaders(headers),
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(text)),
  });
  res.end(text);
}

export function sendError(res: ServerResponse, err: ApiError): void {
  sendJson(res, err.status, err.body(), err.headers);
}

export class SseWriter {
  readonly res: ServerResponse;

  constructor(res: ServerResponse) {
    this.res = res;
    res.writeHead(200, {
      ...baseHeaders(),
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    res.flushHeaders();
  }

  /** `event: <name>` (Responses API style) followed by `data: <json>`. */
  event(name: string, data: unknown): void {
    if (this.res.destroyed) return;
    this.res.write(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  /** A bare `data: <json>` line (Chat Completions style). */
  data(data: unknown): void {
    if (this.res.destroyed) return;
    this.res.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
  }

  end(): void {
    if (!this.res.destroyed) this.res.end();
  }
}
