/**
 * Part 9, several machines: turns per second with one bot process and with three, all on one Redis and behind one
 * REST proxy (`npm run rest-proxy`), and how long each process waited for its identify turn.
 *
 * The emulator has one guild, so the three "machines" are three processes logged in as the guild's shard (Discord
 * gives each of them the shard's events; the thread locks in Redis decide who answers). Whatever the number of
 * machines, the bot as a whole may make 50 requests a second (Discord's global limit, which the emulator enforces
 * and the proxy keeps for all of them): that is the ceiling of all machines together. On one benchmark machine the
 * three processes share its cores, so there CPU binds before the global limit does.
 * Per-channel limits are raised, as in part 3, so that only the global limit is Discord's.
 */
import { resolve } from 'node:path';
import { type BotProcess, createWorld, spawnBot, type World } from '../test/e2e/harness.ts';
import { startRedis } from '../test/redis-server.ts';
import { finishedReplies, NO_LATENCY, now, poll, RAISED_DISCORD_LIMITS } from './common.ts';

const REST_PROXY_ENTRY = resolve(import.meta.dirname, '../src/rest-proxy.ts');
export const MACHINE_COUNTS = [1, 3] as const;
export const MACHINE_THREADS = 40;
export const MACHINE_MESSAGES = 5;

export interface MachinesRun {
  machines: number;
  turns: number;
  answered: number;
  wallMs: number;
  turnsPerSecond: number;
  discordRequestsPerSecond: number;
  /** 429s Discord (the emulator) answered, global ones apart. */
  discordGlobal429: number;
  discordRoute429: number;
  /** Requests the proxy held back (answered 429 itself) because they would have gone over a Discord limit. */
  heldBackByProxy: number;
  /** Each process's wait for its identify turn, in the order they got it. */
  identifyWaitsMs: number[];
}

export interface MachinesResult {
  runs: MachinesRun[];
}

export async function runMachines(log: (line: string) => void): Promise<MachinesResult> {
  const redis = await startRedis();
  if (!redis) throw new Error('redis-server is not installed: part 9 needs it');
  const runs: MachinesRun[] = [];
  try {
    for (const machines of MACHINE_COUNTS) {
      await redis.restart();
      const world = await createWorld({ discord: { rateLimits: RAISED_DISCORD_LIMITS } });
      let proxy: BotProcess | undefined;
      try {
        proxy = spawnBot(
          { REST_PROXY_UPSTREAM: world.discord.apiUrl, REST_PROXY_PORT: '0', LOG_LEVEL: 'debug' },
          world.dir,
          REST_PROXY_ENTRY,
        );
        const proxyUrl = (await proxy.waitForLog((l) => l.msg.startsWith('REST proxy listening'), 30_000))
          .url as string;
        runs.push(
          await runOnce(world, proxy, machines, { STORE_URL: redis.url, DISCORD_API_URL: proxyUrl }, log),
        );
        const last = runs.at(-1)!;
        log(`  ${machines} machine(s): ${last.turnsPerSecond.toFixed(1)} turns/s`);
      } finally {
        await proxy?.kill();
        await world.close();
      }
    }
  } finally {
    await redis.stop();
  }
  return { runs };
}

async function runOnce(
  world: World,
  proxy: BotProcess,
  machines: number,
  env: Record<string, string>,
  log: (line: string) => void,
): Promise<MachinesRun> {
  const bots = await Promise.all(
    Array.from({ length: machines }, () => world.startBot({ ...env, LOG_LEVEL: 'info' })),
  );
  const identifyWaitsMs = bots
    .map((b) => b.logs.find((l) => l.msg === 'identify turn taken')?.waitedMs as number)
    .sort((a, b) => a - b);
  world.openai.setLatency(NO_LATENCY);
  // Every process has the guild's events; a command goes to one of them, as Discord sends an interaction once.
  const via = world.discord.gatewaySessions().find((s) => s.connected)!.id;
  const users = Array.from({ length: 8 }, (_, i) => world.discord.createUser({ username: `user${i}` }));
  const threads = Array.from({ length: MACHINE_THREADS }, (_, i) => {
    const user = users[i % users.length]!;
    const threadId = world.discord.createThread({
      parentId: world.discord.channelId,
      name: `m${i}`,
      ownerId: user.id,
    });
    return { threadId, user };
  });
  await Promise.all(
    threads.map(({ threadId, user }) =>
      world.discord
        .runCommand({ channelId: threadId, userId: user.id, name: 'chat', via })
        .response({ timeoutMs: 60_000 }),
    ),
  );
  const proxyHeldBefore = heldBack(proxy);
  const requestsBefore = world.discord.requests.length;
  const start = now();
  for (let k = 1; k <= MACHINE_MESSAGES; k++)
    for (const [i, { threadId, user }] of threads.entries())
      world.discord.postMessage(threadId, user.id, `t${i} m${k}`);
  const total = MACHINE_THREADS * MACHINE_MESSAGES;
  const answeredNow = () =>
    threads.reduce((sum, { threadId }) => sum + finishedReplies(world, threadId).length, 0);
  const progress = setInterval(() => log(`  … ${answeredNow()}/${total} answered`), 10_000);
  try {
    await poll(() => answeredNow() >= total, {
      timeoutMs: 240_000,
      intervalMs: 100,
      message: `${total} replies with ${machines} machine(s)`,
    });
  } catch (error) {
    // What was left: threads short of replies, their last bot message, and what the bots warned about.
    const short = threads
      .filter(({ threadId }) => finishedReplies(world, threadId).length < MACHINE_MESSAGES)
      .slice(0, 5)
      .map(({ threadId }) => {
        const last = world.discord.messages(threadId).at(-1);
        return `${threadId}: ${finishedReplies(world, threadId).length} replies, last ${JSON.stringify(last?.content.slice(0, 60))}`;
      });
    const warnings = bots.flatMap((b) => b.logs.filter((l) => l.level >= 40));
    throw new Error(
      `${(error as Error).message}\n${short.join('\n')}\nbot warnings (${warnings.length}): ${warnings
        .slice(0, 3)
        .map((l) => JSON.stringify(l).slice(0, 1500))
        .join('\n')}`,
    );
  } finally {
    clearInterval(progress);
  }
  const end = Math.max(
    ...threads.flatMap(({ threadId }) =>
      finishedReplies(world, threadId).map((m) => m.editedAt ?? m.createdAt),
    ),
  );
  const wallMs = end - start;
  const during = world.discord.requests.slice(requestsBefore);
  const answered = threads.reduce((sum, { threadId }) => sum + finishedReplies(world, threadId).length, 0);
  return {
    machines,
    turns: total,
    answered,
    wallMs,
    turnsPerSecond: (total / wallMs) * 1000,
    discordRequestsPerSecond: (during.length / wallMs) * 1000,
    discordGlobal429: during.filter((r) => r.status === 429 && r.headers?.['X-RateLimit-Global']).length,
    discordRoute429: during.filter((r) => r.status === 429 && !r.headers?.['X-RateLimit-Global']).length,
    heldBackByProxy: heldBack(proxy) - proxyHeldBefore,
    identifyWaitsMs,
  };
}

function heldBack(proxy: BotProcess): number {
  return proxy.logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('a request would go over'))
    .length;
}
