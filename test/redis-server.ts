/**
 * A private redis-server for tests: started on a free loopback port, without persistence, killed afterwards.
 * Returns undefined (after a console.warn) when redis-server is not installed, so a suite can `describe.skipIf`.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface RedisServer {
  /** `redis://127.0.0.1:<port>` */
  url: string;
  /** Kills the server and waits until it has exited; restart() may start it again. */
  stop(): Promise<void>;
  /** Stops the server (if running) and starts a fresh, empty one on the same port. */
  restart(): Promise<void>;
}

const REDIS_SERVER = process.env.REDIS_SERVER ?? 'redis-server';

let warned = false;

/** True when a redis-server binary can be run. */
export function hasRedisServer(): boolean {
  const probe = spawnSync(REDIS_SERVER, ['--version'], { stdio: 'ignore' });
  return probe.error === undefined && probe.status === 0;
}

export async function startRedis(): Promise<RedisServer | undefined> {
  if (!hasRedisServer()) {
    if (!warned) {
      warned = true;
      console.warn(
        'Redis tests SKIPPED: redis-server is not installed (install it with `apt-get install -y redis-server`, or set REDIS_SERVER).',
      );
    }
    return undefined;
  }
  const dir = mkdtempSync(join(tmpdir(), 'threadfork-redis-'));
  let port = await freePort();
  let child: ChildProcess | undefined;
  // If the test process ends without stop(), do not leave the server behind.
  process.once('exit', () => child?.kill('SIGKILL'));

  const launch = async (): Promise<void> => {
    mkdirSync(dir, { recursive: true });
    // Another process may take the port between our probe and redis binding it: try a few times.
    for (let attempt = 0; ; attempt += 1) {
      const started = spawn(
        REDIS_SERVER,
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--save',
          '',
          '--appendonly',
          'no',
          '--dir',
          dir,
          '--daemonize',
          'no',
          '--loglevel',
          'warning',
        ],
        { stdio: 'ignore' },
      );
      const exited = new Promise<void>((resolve) => started.once('exit', () => resolve()));
      if (await waitForPong(port, exited)) {
        child = started;
        return;
      }
      if (attempt >= 3) throw new Error(`redis-server did not start on port ${port}`);
      started.kill('SIGKILL');
      await exited;
      await sleep(100);
    }
  };

  const stop = async (): Promise<void> => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => running.once('exit', () => resolve()));
    running.kill('SIGKILL');
    await exited;
  };

  try {
    await launch();
  } catch {
    // The port went to someone else: pick another one once.
    port = await freePort();
    await launch();
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
    async restart() {
      await stop();
      await launch();
    },
  };
}

/** Redis refuses port 0, so ask the OS for a free port by binding a throwaway server to 0. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('no free port'))));
    });
  });
}

/** Polls with PING until the server answers PONG (true), the process exits or 10 s pass (false). */
async function waitForPong(port: number, exited: Promise<void>): Promise<boolean> {
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  const deadline = Date.now() + 10_000;
  while (!gone && Date.now() < deadline) {
    if (await ping(port)) return !gone;
    await sleep(20);
  }
  return false;
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
    socket.once('connect', () => socket.write('PING\r\n'));
  });
}
