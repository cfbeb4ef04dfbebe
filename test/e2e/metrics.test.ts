// The operator's view: the bot as `npm start` runs it with METRICS_PORT set serves Prometheus metrics that match what
// happened in a thread, says it is live, and says it is not ready while its store (Redis) is down, and why.
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shardOf } from '../emulators/discord/index.ts';
import { sample } from '../ops/scrape.ts';
import { startRedis } from '../redis-server.ts';
import {
  type BotProcess,
  click,
  createWorld,
  MODEL,
  openVote,
  SHARDED_ENTRY,
  spawnBot,
  startThread,
  type World,
  waitForBallot,
  waitForReplies,
} from './harness.ts';

const redis = await startRedis();
afterAll(() => redis?.stop());

/** A port nobody listens on right now (the OS picks it). */
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

/** `count` consecutive ports nobody listens on right now (the sharding manager and one per shard). */
async function freePorts(count: number): Promise<number> {
  for (let attempt = 0; ; attempt += 1) {
    const base = await freePort();
    const held: Server[] = [];
    try {
      for (let port = base; port < base + count; port += 1) {
        const server = createServer();
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(port, '127.0.0.1', () => resolve());
        });
        held.push(server);
      }
      return base;
    } catch (error) {
      if (attempt >= 20) throw error;
    } finally {
      await Promise.all(held.map((server) => new Promise((resolve) => server.close(resolve))));
    }
  }
}

/** Polls `probe` until it returns something (never a fixed sleep); fails with `what` after `timeoutMs`. */
async function until<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const found = await probe();
      if (found !== undefined) return found;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 100)); // poll
  }
}

interface Readiness {
  ready: boolean;
  failed: string[];
  checks: Record<string, { ok: boolean; error?: string }>;
}

function endpoint(port: number) {
  const get = (path: string) => fetch(`http://127.0.0.1:${port}${path}`);
  return {
    get,
    metrics: async () => (await get('/metrics')).text(),
    readiness: async () => {
      const response = await get('/readyz');
      return { status: response.status, body: (await response.json()) as Readiness };
    },
  };
}

describe('metrics and health of the bot process', () => {
  let world: World;
  let bot: BotProcess;
  let ops: ReturnType<typeof endpoint>;
  let alice: { id: string };
  let bob: { id: string };

  beforeAll(async () => {
    world = await createWorld();
    const port = await freePort();
    bot = await world.startBot({ METRICS_PORT: String(port), ALTERNATIVES_COOLDOWN_SECONDS: '0' });
    ops = endpoint(port);
    alice = world.discord.createUser({ username: 'alice' });
    bob = world.discord.createUser({ username: 'bob' });
  });
  afterAll(() => world?.close());

  it('listens on loopback by default, is live, and is ready once logged in with its store answering', async () => {
    expect(bot.logs.find((l) => l.msg === 'metrics endpoint listening')).toMatchObject({ host: '127.0.0.1' });
    const live = await ops.get('/healthz');
    expect(live.status).toBe(200);
    expect(await live.json()).toEqual({ status: 'ok' });
    expect(await ops.readiness()).toEqual({
      status: 200,
      body: { ready: true, failed: [], checks: { discord: { ok: true }, store: { ok: true } } },
    });
  });

  it('counts three answered messages as three done turns, their tokens, and every OpenAI request', async () => {
    // One 429 from OpenAI on the way: the SDK retries it, and both attempts are counted.
    world.openai.failNext({ route: 'POST /v1/responses', status: 429, retryAfterSeconds: 0 });
    const threadId = await startThread(world, alice.id, 'count to three');
    world.discord.postMessage(threadId, alice.id, 'two');
    await waitForReplies(world, threadId, 2);
    world.discord.postMessage(threadId, bob.id, 'three');
    await waitForReplies(world, threadId, 3);

    // The reply is shown a moment before the thread's queue is looked at again: wait for both.
    const text = await until(async () => {
      const scraped = await ops.metrics();
      return sample(scraped, 'threadfork_turns_total', { outcome: 'done' }) === 3 &&
        sample(scraped, 'threadfork_queue_waiting_messages') === 0
        ? scraped
        : undefined;
    }, 'three done turns, and nothing waiting');
    expect(sample(text, 'threadfork_turns_total', { backend: 'conversations', outcome: 'done' })).toBe(3);
    expect(sample(text, 'threadfork_turns_total', { outcome: 'failed' })).toBeUndefined();
    expect(sample(text, 'threadfork_turn_duration_seconds_count', { outcome: 'done' })).toBe(3);
    expect(sample(text, 'threadfork_turn_first_token_seconds_count', { outcome: 'done' })).toBe(3);
    expect(sample(text, 'threadfork_turn_queue_wait_seconds_count', { outcome: 'done' })).toBe(3);
    expect(sample(text, 'threadfork_tokens_total', { model: MODEL, kind: 'input' })).toBeGreaterThan(0);
    expect(sample(text, 'threadfork_tokens_total', { model: MODEL, kind: 'output' })).toBeGreaterThan(0);
    expect(sample(text, 'threadfork_queue_threads_waiting')).toBe(0);

    // Every request the OpenAI emulator received was counted once, with the status it answered.
    const byStatus = new Map<string, number>();
    for (const request of world.openai.requests) {
      byStatus.set(String(request.status), (byStatus.get(String(request.status)) ?? 0) + 1);
    }
    expect(byStatus.get('429')).toBe(1);
    for (const [status, count] of byStatus) {
      expect(sample(text, 'threadfork_openai_requests_total', { status }), `status ${status}`).toBe(count);
    }
    expect(sample(text, 'threadfork_openai_requests_total', { endpoint: 'responses', status: '429' })).toBe(
      1,
    );
    expect(sample(text, 'threadfork_openai_retries_total', { endpoint: 'responses' })).toBe(1);

    // Discord REST: the posts and edits of the replies, all answered 2xx here.
    expect(
      sample(text, 'threadfork_discord_rest_responses_total', { method: 'POST', status: '200' }),
    ).toBeGreaterThan(3);
    // The store was timed, and prom-client's process metrics are there.
    expect(
      sample(text, 'threadfork_store_operation_duration_seconds_count', {
        operation: 'update',
        outcome: 'ok',
      }),
    ).toBeGreaterThan(0);
    expect(sample(text, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(sample(text, 'nodejs_eventloop_lag_seconds')).toBeDefined();
  });

  it('counts an /alternatives fork and its vote, and the 429 Discord answered on the way', async () => {
    const threadId = await startThread(world, alice.id, 'name a colour');
    world.discord.injectFailure({
      route: 'POST /channels/:channel_id/messages',
      status: 429,
      retryAfterMs: 50,
    });
    const ballot = await openVote(world, threadId, alice.id, { count: 3, prompt: 'go' });
    await click(world, ballot, 'B', bob.id);
    await waitForBallot(world, threadId, (m) => m.content.startsWith('✅ **B wins'));

    const text = await until(async () => {
      const scraped = await ops.metrics();
      return sample(scraped, 'threadfork_votes_total') === 1 ? scraped : undefined;
    }, 'one vote');
    expect(sample(text, 'threadfork_alternatives_requests_total', { outcome: 'opened' })).toBe(1);
    expect(sample(text, 'threadfork_alternatives_total', { outcome: 'opened' })).toBe(3);
    expect(sample(text, 'threadfork_votes_total', { outcome: 'closed', reason: 'quorum' })).toBe(1);
    // Alternatives are not turns: 4 turns so far (the 3 above and this thread's first).
    expect(sample(text, 'threadfork_turns_total', { outcome: 'done' })).toBe(4);
    expect(sample(text, 'threadfork_errors_total')).toBeUndefined();
    // discord.js waited out the 429 and sent the message again.
    expect(sample(text, 'threadfork_discord_rest_responses_total', { method: 'POST', status: '429' })).toBe(
      1,
    );
    expect(sample(text, 'threadfork_discord_rest_retries_total', { reason: 'rate_limited' })).toBe(1);
  });
});

describe.skipIf(!redis)('readiness with a Redis store', () => {
  let world: World;
  let ops: ReturnType<typeof endpoint>;

  beforeAll(async () => {
    world = await createWorld();
    const port = await freePort();
    await world.startBot({ STORE_URL: redis!.url, METRICS_PORT: String(port) });
    ops = endpoint(port);
  });
  afterAll(() => world?.close());

  it('is not ready while Redis is down, saying the store check failed, and ready again once it is back', async () => {
    await until(async () => ((await ops.readiness()).status === 200 ? true : undefined), 'ready at start');

    await redis!.stop();
    const down = await until(async () => {
      const readiness = await ops.readiness();
      return readiness.status === 503 ? readiness.body : undefined;
    }, 'not ready while Redis is down');
    expect(down.ready).toBe(false);
    expect(down.failed).toEqual(['store']);
    expect(down.checks.discord).toEqual({ ok: true });
    expect(down.checks.store).toMatchObject({ ok: false, error: expect.stringMatching(/unavailable/) });
    // Still live: a process manager must not restart a bot that waits for its store.
    expect((await ops.get('/healthz')).status).toBe(200);
    // The bot's own store operations (its sweeps) fail meanwhile, and are counted as such.
    await until(async () => {
      const errors = sample(await ops.metrics(), 'threadfork_store_operation_duration_seconds_count', {
        outcome: 'error',
      });
      return errors !== undefined && errors > 0 ? errors : undefined;
    }, 'a failed store operation');

    await redis!.restart();
    const back = await until(async () => {
      const readiness = await ops.readiness();
      return readiness.status === 200 ? readiness.body : undefined;
    }, 'ready after Redis is back');
    expect(back).toEqual({ ready: true, failed: [], checks: { discord: { ok: true }, store: { ok: true } } });
  }, 90_000);
});

describe.skipIf(!redis)('metrics of npm run start:sharded', () => {
  let world: World;
  let manager: BotProcess;
  let port: number;

  /** The shards' process ids, from the manager's log. */
  const shardPids = () => manager.logs.filter((l) => l.msg === 'shard started').map((l) => l.pid as number);

  beforeAll(async () => {
    world = await createWorld({ discord: { recommendedShards: 2 } });
    port = await freePorts(3);
    manager = spawnBot(
      { ...world.env, STORE_URL: redis!.url, METRICS_PORT: String(port) },
      world.dir,
      SHARDED_ENTRY,
    );
    await manager.waitForLog((l) => l.msg === 'all shards are running', 60_000);
  }, 90_000);
  afterAll(async () => {
    await manager?.stop();
    for (const pid of shardPids()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone, as it should be.
      }
    }
    await world?.close();
  });

  it("serves every shard's metrics labelled by shard on METRICS_PORT, each shard its own on METRICS_PORT+1+N", async () => {
    const ops = endpoint(port);
    const ready = await until(async () => {
      const readiness = await ops.readiness();
      return readiness.status === 200 ? readiness.body : undefined;
    }, 'every shard ready');
    expect(ready).toEqual({
      ready: true,
      failed: [],
      checks: { 'shard 0': { ok: true }, 'shard 1': { ok: true } },
    });

    const alice = world.discord.createUser({ username: 'alice' });
    await startThread(world, alice.id, 'hello shards');
    const owner = String(shardOf(world.discord.guildId, 2));
    const text = await until(async () => {
      const scraped = await ops.metrics();
      return sample(scraped, 'threadfork_turns_total', { outcome: 'done' }) === 1 ? scraped : undefined;
    }, 'the turn, counted by the shard that ran it');
    expect(sample(text, 'threadfork_turns_total', { outcome: 'done', shard: owner })).toBe(1);
    for (const shard of ['0', '1']) {
      expect(sample(text, 'threadfork_shard_scrape_up', { shard }), shard).toBe(1);
      expect(sample(text, 'process_cpu_user_seconds_total', { shard }), shard).toBeGreaterThan(0);
    }
    expect(sample(text, 'process_cpu_user_seconds_total', { shard: 'manager' })).toBeGreaterThan(0);
    expect(
      text.split('\n').filter((l) => l.startsWith('# TYPE process_cpu_user_seconds_total ')),
    ).toHaveLength(1);

    // The shard that ran the turn, scraped directly (its own endpoint has no shard label: the scrape target says it).
    const own = await endpoint(port + 1 + Number(owner)).metrics();
    expect(sample(own, 'threadfork_turns_total', { outcome: 'done' })).toBe(1);
    expect(sample(await endpoint(port + 1 + (1 - Number(owner))).metrics(), 'threadfork_turns_total')).toBe(
      undefined,
    );
  }, 60_000);
});
