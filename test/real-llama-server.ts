/**
 * A real OpenAI-compatible server for tests: llama.cpp's own `llama-server`, as Debian builds it, with a tiny model of
 * random weights (gibberish replies, but the real server's HTTP API, streaming, `n`, usage and errors).
 *
 * The shared tool `../shared/tools/real-llama-server.sh` (a sibling of the repository) sets it up once into a cache
 * directory (`node_modules/.cache/real-llama-server`, or REAL_LLAMA_DIR), which later runs reuse; `.ci/run` sets it
 * up before the tests, and says so in REAL_LLAMA_SKIP when it could not. When it cannot be set up (no tool, no Debian
 * mirror, the packages moved), `startLlamaServer` says why (after a console.warn) instead of failing, so a suite can
 * `describe.skipIf` and name the reason, as the Redis tests do.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, realpathSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const ROOT = resolve(import.meta.dirname, '..');
const SETUP_SCRIPT = process.env.REAL_LLAMA_SETUP ?? resolve(ROOT, '../shared/tools/real-llama-server.sh');
const CACHE_DIR = process.env.REAL_LLAMA_DIR ?? join(ROOT, 'node_modules/.cache/real-llama-server');
/** apt against a slow mirror on a busy machine; the tool itself takes about 10 s. */
const SETUP_TIMEOUT_MS = 180_000;
/** Loading the 4.7 MB model takes well under a second; the rest is room for two busy cores. */
const START_TIMEOUT_MS = 60_000;

export interface LlamaServer {
  /** `http://127.0.0.1:<port>/v1`, for OPENAI_BASE_URL */
  baseURL: string;
  /** `http://127.0.0.1:<port>` */
  origin: string;
  /** Requests it answers at once; a request's `n` must not exceed it. */
  slots: number;
  /** The model's name as the server reports it (it answers any name). */
  model: 'tiny-llama';
  /** What the server printed, for a failure's message. */
  output(): string;
  /** Kills the server and waits until it has exited. */
  stop(): Promise<void>;
}

export type LlamaServerStart =
  | { server: LlamaServer; skipped?: undefined }
  | { server?: undefined; skipped: string };

let setUp: Promise<string | { skipped: string }> | undefined;

/**
 * Starts a llama-server on a free loopback port with `slots` slots, replies of at most `maxTokens` tokens, and waits
 * until it is healthy. Sets it up first if needed (once per process); resolves with `skipped` when that fails.
 */
export async function startLlamaServer({
  slots = 2,
  maxTokens = 32,
}: {
  slots?: number;
  maxTokens?: number;
} = {}): Promise<LlamaServerStart> {
  setUp ??= setUpOnce();
  const dir = await setUp;
  if (typeof dir !== 'string') return dir;

  let output = '';
  let child: ChildProcess | undefined;
  process.once('exit', () => child?.kill('SIGKILL'));
  // Another process may take the port between our probe and the server binding it: try a few times.
  for (let attempt = 0; ; attempt += 1) {
    const port = await freePort();
    const started = spawn(join(dir, 'start-server.sh'), [String(port), String(slots), String(maxTokens)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    output = '';
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-20_000);
    };
    started.stdout!.on('data', keep);
    started.stderr!.on('data', keep);
    const exited = new Promise<void>((done) => started.once('exit', () => done()));
    const origin = `http://127.0.0.1:${port}`;
    if (await waitForHealth(origin, exited)) {
      child = started;
      return {
        server: {
          baseURL: `${origin}/v1`,
          origin,
          slots,
          model: 'tiny-llama',
          output: () => output,
          async stop() {
            const running = child;
            child = undefined;
            if (!running || running.exitCode !== null || running.signalCode !== null) return;
            running.kill('SIGKILL');
            await exited;
          },
        },
      };
    }
    started.kill('SIGKILL');
    await exited;
    if (attempt >= 2) throw new Error(`llama-server did not become healthy on port ${port}:\n${output}`);
  }
}

/** The set-up directory, or why there is none. */
async function setUpOnce(): Promise<string | { skipped: string }> {
  const result = await setUpDir();
  if (typeof result !== 'string') {
    console.warn(`Real llama-server tests SKIPPED: ${result.skipped}`);
  }
  return result;
}

async function setUpDir(): Promise<string | { skipped: string }> {
  // Set by .ci/run when the tool already failed there: no second wait for the same failure.
  if (process.env.REAL_LLAMA_SKIP) return { skipped: process.env.REAL_LLAMA_SKIP };
  if (!existsSync(SETUP_SCRIPT)) {
    return { skipped: `the set-up tool ${SETUP_SCRIPT} is not there (set REAL_LLAMA_SETUP to its path)` };
  }
  mkdirSync(CACHE_DIR, { recursive: true });
  // The scripts the tool writes hold absolute paths: give it the real one, not one through a symlink.
  const dir = realpathSync(CACHE_DIR);
  if (isSetUp(dir)) return dir;
  // Test files run in parallel processes: one sets up, the others wait for it.
  const lock = `${dir}.lock`;
  const deadline = Date.now() + SETUP_TIMEOUT_MS + 10_000;
  while (!tryLock(lock)) {
    if (Date.now() > deadline) return { skipped: `another process held ${lock} for too long` };
    await sleep(200);
  }
  try {
    if (isSetUp(dir)) return dir;
    const failure = await runSetUp(dir);
    if (failure) return { skipped: failure };
    return isSetUp(dir) ? dir : { skipped: `the set-up tool finished, but ${dir} holds no working server` };
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/** A set-up directory whose server binary runs (a copy moved from elsewhere, or half made, does not). */
function isSetUp(dir: string): boolean {
  if (!existsSync(join(dir, 'start-server.sh'))) return false;
  const probe = spawnSync(join(dir, 'run'), [join(dir, 'root/usr/bin/llama-server'), '--version'], {
    stdio: 'ignore',
    timeout: 30_000,
  });
  return probe.error === undefined && probe.status === 0;
}

/** mkdir is atomic: whoever makes the directory holds the lock. A lock older than the set-up can take is stale. */
function tryLock(lock: string): boolean {
  try {
    mkdirSync(lock);
    return true;
  } catch {
    try {
      if (Date.now() - statSync(lock).mtimeMs > SETUP_TIMEOUT_MS + 10_000) rmSync(lock, { recursive: true });
    } catch {
      // Released meanwhile.
    }
    return false;
  }
}

/** Runs the set-up tool; resolves with why it failed (its last line), or undefined. */
function runSetUp(dir: string): Promise<string | undefined> {
  return new Promise((done) => {
    const child = spawn('bash', [SETUP_SCRIPT, dir], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4000);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), SETUP_TIMEOUT_MS);
    child.once('error', (error) => {
      clearTimeout(timer);
      done(`the set-up tool could not run: ${error.message}`);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return done(undefined);
      const last = stderr.trim().split('\n').at(-1);
      done(
        signal === 'SIGKILL'
          ? `the set-up tool took more than ${SETUP_TIMEOUT_MS / 1000} s`
          : `the set-up tool failed (exit ${code}): ${last || 'no message'}`,
      );
    });
  });
}

/** Asks the OS for a free port by binding a throwaway server to port 0. */
function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolvePort(port) : reject(new Error('no free port'))));
    });
  });
}

/** Polls /health until it says ok (true), the process exits or START_TIMEOUT_MS pass (false). */
async function waitForHealth(origin: string, exited: Promise<void>): Promise<boolean> {
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!gone && Date.now() < deadline) {
    try {
      // 503 while the model loads, a refused connection before the port is bound.
      const response = await fetch(`${origin}/health`, { signal: AbortSignal.timeout(2000) });
      if (response.ok && ((await response.json()) as { status?: string }).status === 'ok') return !gone;
    } catch {
      // Not listening yet.
    }
    await sleep(100);
  }
  return false;
}
