/**
 * A small HTTP proxy in front of a model server, so a test can see what the bot asked and what the server answered
 * (a real server keeps no record of it). It can also hold requests back (to catch the bot in the middle of a turn)
 * and pace a streamed answer (so a fast server's reply arrives as slowly as a real model's).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** What a choice of a streamed Chat Completion said, put together from its chunks. */
export interface StreamedChoice {
  text: string;
  finishReason: string | undefined;
  /** The usage chunk that followed this choice's last chunk (llama.cpp sends one per choice). */
  usage: { prompt_tokens: number; completion_tokens: number } | undefined;
}

export interface ProxiedRequest {
  method: string;
  path: string;
  /** The request body, parsed when it was JSON. */
  body: unknown;
  status: number | undefined;
  startedAt: number;
  endedAt: number | undefined;
  /** The client left before the answer was complete (a held request is then dropped). */
  abandoned: boolean;
  /** The raw response body (the SSE text of a stream). */
  response: string;
  /** For a streamed Chat Completion: its choices by index, as llama.cpp streams them. */
  choices: StreamedChoice[];
  /** Usage chunks that followed no choice's end (OpenAI sends one for the whole request). */
  usage: { prompt_tokens: number; completion_tokens: number }[];
}

export interface RecordingProxy {
  /** `http://127.0.0.1:<port>/v1` */
  baseURL: string;
  requests: ProxiedRequest[];
  /** Holds every request that arrives from now on until `release()`; a request whose client left is dropped. */
  hold(): void;
  release(): void;
  /** Waits `ms` before passing on each event of a streamed answer (0: none). */
  pace(ms: number): void;
  close(): Promise<void>;
}

export async function createRecordingProxy(target: string): Promise<RecordingProxy> {
  const requests: ProxiedRequest[] = [];
  let held: Promise<void> | undefined;
  let releaseHeld: (() => void) | undefined;
  let paceMs = 0;

  async function forward(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let raw = '';
    for await (const chunk of req) raw += chunk;
    const record: ProxiedRequest = {
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      body: parse(raw),
      status: undefined,
      startedAt: Date.now(),
      endedAt: undefined,
      abandoned: false,
      response: '',
      choices: [],
      usage: [],
    };
    requests.push(record);
    const gone = new AbortController();
    res.once('close', () => {
      if (res.writableFinished) return;
      record.abandoned = true;
      gone.abort();
    });
    try {
      if (held) await held;
      if (gone.signal.aborted) return;
      const headers = new Headers();
      for (const [name, value] of Object.entries(req.headers)) {
        if (typeof value === 'string' && !['host', 'connection', 'content-length'].includes(name))
          headers.set(name, value);
      }
      const upstream = await fetch(`${target}${record.path}`, {
        method: record.method,
        headers,
        ...(raw ? { body: raw } : {}),
        signal: gone.signal,
      });
      record.status = upstream.status;
      res.writeHead(upstream.status, {
        'content-type': upstream.headers.get('content-type') ?? 'application/octet-stream',
      });
      const decoder = new TextDecoder();
      let pending = '';
      for await (const chunk of upstream.body ?? []) {
        const text = decoder.decode(chunk as Uint8Array, { stream: true });
        record.response += text;
        if (paceMs === 0) {
          res.write(text);
          continue;
        }
        // Whole SSE events, one at a time.
        pending += text;
        const events = pending.split('\n\n');
        pending = events.pop() ?? '';
        for (const event of events) {
          await sleep(paceMs);
          res.write(`${event}\n\n`);
        }
      }
      res.end(pending);
      readStream(record);
    } catch (error) {
      if (!gone.signal.aborted) {
        res.writeHead(502).end(String(error));
        record.status = 502;
      }
    } finally {
      record.endedAt = Date.now();
    }
  }

  const server = createServer((req, res) => void forward(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const release = () => {
    releaseHeld?.();
    held = undefined;
  };
  return {
    baseURL: `http://127.0.0.1:${port}/v1`,
    requests,
    hold() {
      held ??= new Promise((resolve) => {
        releaseHeld = resolve;
      });
    },
    release,
    pace(ms) {
      paceMs = ms;
    },
    async close() {
      release();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

function parse(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

/** Puts a streamed Chat Completion's choices together; a usage chunk belongs to the choice that ended just before. */
function readStream(record: ProxiedRequest): void {
  let lastEnded: StreamedChoice | undefined;
  for (const line of record.response.split('\n')) {
    if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
    const chunk = parse(line.slice(6)) as {
      choices?: { index: number; delta?: { content?: string | null }; finish_reason?: string | null }[];
      usage?: { prompt_tokens: number; completion_tokens: number } | null;
    };
    for (const part of chunk.choices ?? []) {
      record.choices[part.index] ??= { text: '', finishReason: undefined, usage: undefined };
      const choice = record.choices[part.index]!;
      choice.text += part.delta?.content ?? '';
      if (part.finish_reason) {
        choice.finishReason = part.finish_reason;
        lastEnded = choice;
      }
    }
    if (chunk.usage) {
      if (lastEnded && !lastEnded.usage) lastEnded.usage = chunk.usage;
      else record.usage.push(chunk.usage);
    }
  }
}
