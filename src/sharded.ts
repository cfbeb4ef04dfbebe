/**
 * `npm run start:sharded`: the bot under discord.js's ShardingManager, one process per shard (each runs src/index.ts,
 * exactly as `npm start` does), all of them on one Redis. The shard count is SHARD_COUNT, or what Discord recommends.
 * Shards write their JSON logs through this process, each line tagged with `"shard":<id>`.
 * With METRICS_PORT, shard N serves its own endpoint on METRICS_PORT + 1 + N, and this process serves on METRICS_PORT
 * every shard's metrics (labelled `shard`) and a readiness that needs every shard ready (src/ops/shards.ts).
 */
import { ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { REST, type RESTGetAPIGatewayBotResult, Routes, type Shard, ShardingManager } from 'discord.js';
import { loadConfigOrExit, storeUrlSecrets } from './config.ts';
import { createLogger, createScrubber } from './logger.ts';
import { NODE_FLAGS } from './node-runtime.ts';
import type { OpsServer } from './ops/ops-server.ts';
import { serveManagerOps, shardMetricsPort } from './ops/shards.ts';

const SHARD_FILE = resolve(import.meta.dirname, 'index.ts');
/**
 * A shard that exits is started again after a back-off: this long after its first exit, doubling with each exit in a
 * row up to SHARD_RESPAWN_MAX_MS. discord.js's own respawn starts it again at once, and a shard that dies on every
 * start (a store down, a refused token) would log in again and again: Discord resets a token after 1,000 a day.
 */
const SHARD_RESPAWN_FIRST_MS = 1000;
const SHARD_RESPAWN_MAX_MS = 5 * 60_000;
/** A shard that stayed ready this long had recovered: its next exit starts the back-off afresh. */
const SHARD_STABLE_MS = 2 * 60_000;
/** Discord lets a bot identify one shard per 5 s (max_concurrency 1): shards are started this far apart. */
const SHARD_SPAWN_SPACING_MS = 5500;
/** How long a shard may take to stop cleanly before it is killed. */
const SHARD_STOP_TIMEOUT_MS = 15_000;

const config = loadConfigOrExit();
if (!/^rediss?:\/\//.test(config.storeUrl)) {
  console.error(
    'STORE_URL must be a redis:// or rediss:// URL to run sharded: the shards are separate processes that share one Redis (an SQLite file serves one process; use npm start for that).',
  );
  process.exit(78);
}

const logger = createLogger(config.logLevel, storeUrlSecrets(config.storeUrl)).child({ shard: 'manager' });
// The shards scrub their own log lines; what else they print (a crash's stack on stderr) is scrubbed on the way.
const scrub = createScrubber(storeUrlSecrets(config.storeUrl));

/**
 * The shard count Discord recommends. discord.js's own fetchRecommendedShardCount (what totalShards: 'auto' uses)
 * always asks discord.com, whatever `rest.api` says, so ask the configured API (DISCORD_API_URL) here.
 */
async function recommendedShardCount(): Promise<number> {
  const rest = new REST(config.discord.apiUrl ? { api: config.discord.apiUrl } : {}).setToken(
    config.discord.token,
  );
  const { shards } = (await rest.get(Routes.gatewayBot())) as RESTGetAPIGatewayBotResult;
  return shards;
}

/** Copies a shard's output to ours: JSON log lines get `"shard":<id>` first, other lines a `[shard <id>]` prefix. */
function relay(shardId: number, from: Readable | null, to: Writable): void {
  if (!from) return;
  createInterface({ input: from, crlfDelay: Number.POSITIVE_INFINITY }).on('line', (line) => {
    const clean = scrub(line);
    to.write(
      /^\{\s*"/.test(clean) ? `{"shard":${shardId},${clean.slice(1)}\n` : `[shard ${shardId}] ${clean}\n`,
    );
  });
}

function stopShard(shard: Shard): Promise<void> {
  const child = shard.process;
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((done) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), SHARD_STOP_TIMEOUT_MS);
    child.once('exit', () => {
      clearTimeout(timer);
      done();
    });
    child.kill('SIGTERM');
  });
}

let totalShards: number;
try {
  totalShards = config.shardCount ?? (await recommendedShardCount());
} catch (error) {
  logger.fatal({ err: error }, 'cannot ask Discord for the shard count (set SHARD_COUNT to skip this)');
  process.exit(1);
}

const manager = new ShardingManager(SHARD_FILE, {
  totalShards,
  token: config.discord.token,
  mode: 'process',
  // Each shard is started with the flags `npm start` uses (its environment, compile cache included, is ours).
  execArgv: [...NODE_FLAGS],
  // Exited shards are started again here, with a back-off (see SHARD_RESPAWN_FIRST_MS).
  respawn: false,
  silent: true,
});
const respawnTimers = new Set<ReturnType<typeof setTimeout>>();
let opsServer: OpsServer | undefined;
if (config.metrics) {
  if (shardMetricsPort(config.metrics.port, totalShards - 1) > 65_535) {
    console.error(
      `METRICS_PORT must be at most ${65_535 - totalShards} to run ${totalShards} shards: shard N serves on METRICS_PORT+1+N.`,
    );
    process.exit(78);
  }
  try {
    opsServer = await serveManagerOps({ ...config.metrics, totalShards, logger });
  } catch (error) {
    logger.fatal({ err: error }, 'cannot serve metrics on METRICS_PORT');
    process.exit(1);
  }
}
manager.on('shardCreate', (shard) => {
  // Each shard is a bot process with its own endpoint; the environment is read when the shard (re)spawns.
  if (config.metrics)
    (shard.env as NodeJS.ProcessEnv).METRICS_PORT = String(shardMetricsPort(config.metrics.port, shard.id));
  shard.on('spawn', (child) => {
    if (!(child instanceof ChildProcess)) return;
    relay(shard.id, child.stdout, process.stdout);
    relay(shard.id, child.stderr, process.stderr);
    logger.info({ shardId: shard.id, pid: child.pid }, 'shard started');
  });
  let readyAt: number | undefined;
  let exitsInRow = 0;
  shard.on('ready', () => {
    readyAt = Date.now();
    logger.info({ shardId: shard.id }, 'shard ready');
  });
  shard.on('death', (child) => {
    if (stopping) return;
    const exitCode = child instanceof ChildProcess ? child.exitCode : undefined;
    if (readyAt !== undefined && Date.now() - readyAt >= SHARD_STABLE_MS) exitsInRow = 0;
    readyAt = undefined;
    exitsInRow += 1;
    const retryInMs = Math.min(SHARD_RESPAWN_FIRST_MS * 2 ** (exitsInRow - 1), SHARD_RESPAWN_MAX_MS);
    logger.warn(
      { shardId: shard.id, exitCode, exitsInRow, retryInMs },
      'shard exited; starting it again later',
    );
    const timer = setTimeout(() => {
      respawnTimers.delete(timer);
      if (stopping) return;
      shard
        .spawn(-1)
        .catch((error: unknown) => logger.error({ err: error, shardId: shard.id }, 'shard failed'));
    }, retryInMs);
    respawnTimers.add(timer);
  });
  shard.on('error', (error) => logger.error({ err: error, shardId: shard.id }, 'shard failed'));
});

let stopping: Promise<unknown> | undefined;
async function stop(signal: string, exitCode: number): Promise<never> {
  if (!stopping) {
    logger.info({ signal }, 'stopping all shards');
    for (const timer of respawnTimers) clearTimeout(timer);
    stopping = Promise.all(manager.shards.map(stopShard));
  }
  await stopping;
  await opsServer?.close();
  process.exit(exitCode);
}
process.once('SIGINT', () => void stop('SIGINT', 0));
process.once('SIGTERM', () => void stop('SIGTERM', 0));

/** Starts a shard and waits until it is ready, however many exits and back-offs that takes. */
async function startShard(shard: Shard): Promise<void> {
  const ready = new Promise<void>((done) => shard.once('ready', () => done()));
  // No timeout: a shard waits for its store before logging in (src/app.ts), and an exit is retried above.
  await shard.spawn(-1);
  await ready;
}

logger.info({ totalShards, source: config.shardCount ? 'SHARD_COUNT' : 'Discord' }, 'starting shards');
try {
  for (let id = 0; id < totalShards && !stopping; id += 1) {
    if (id > 0) await sleep(SHARD_SPAWN_SPACING_MS);
    await startShard(manager.createShard(id));
  }
  if (!stopping) logger.info({ totalShards }, 'all shards are running');
} catch (error) {
  logger.fatal({ err: error }, 'a shard could not start');
  await stop('startup failure', 1);
}
