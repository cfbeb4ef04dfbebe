import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../core/ports.ts';
import { connectRedis, type RedisConnection } from './redis-store.ts';

/**
 * Discord lets a bot start `max_concurrency` sessions per 5 s: shards whose `shard_id % max_concurrency` is equal
 * (one bucket) must identify at least 5 s apart, whichever machine runs them. A shard identifies only after it set
 * its bucket's key in Redis (SET NX PX), which then blocks the bucket for IDENTIFY_SPACING_MS; the key outlives the
 * process that set it, so a machine that restarts waits its turn like everyone else.
 * The key is held a second longer than Discord's 5 s: what Discord measures is when the IDENTIFY frames arrive, and
 * the frame of a shard that took the key may leave a busy process a while after it did.
 */
export const IDENTIFY_SPACING_MS = 6000;
/** Redis unreachable while a shard waits to identify: try again this often (the shard stays disconnected). */
const RETRY_MS = 1000;

/** discord.js's identify throttler (@discordjs/ws IIdentifyThrottler), as the Client's `ws.buildIdentifyThrottler` takes it. */
export interface IdentifyThrottler {
  /** Resolves once shard `shardId` may identify; rejects when `signal` aborts. */
  waitForIdentify(shardId: number, signal: AbortSignal): Promise<void>;
}

export interface RedisIdentifyThrottlerOptions {
  connection: Pick<RedisConnection, 'client' | 'run'>;
  /** `session_start_limit.max_concurrency` from GET /gateway/bot. */
  maxConcurrency: number;
  logger: Logger;
  spacingMs?: number;
}

/** An identify throttler shared through Redis by every process of the bot (see IDENTIFY_SPACING_MS). */
export function createRedisIdentifyThrottler(options: RedisIdentifyThrottlerOptions): IdentifyThrottler {
  const { connection, logger } = options;
  const spacingMs = options.spacingMs ?? IDENTIFY_SPACING_MS;
  const maxConcurrency = Math.max(1, options.maxConcurrency);
  const holder = randomUUID();
  return {
    async waitForIdentify(shardId, signal) {
      const bucket = shardId % maxConcurrency;
      const key = `threadfork:identify:${maxConcurrency}:${bucket}`;
      const since = Date.now();
      for (;;) {
        signal.throwIfAborted();
        let waitMs: number;
        try {
          const taken = await connection.run(() =>
            connection.client.set(key, `${holder}:${shardId}`, {
              condition: 'NX',
              expiration: { type: 'PX', value: spacingMs },
            }),
          );
          if (taken === 'OK') {
            const waitedMs = Date.now() - since;
            logger.info({ shardId, bucket, maxConcurrency, waitedMs }, 'identify turn taken');
            return;
          }
          const left = await connection.run(() => connection.client.pTTL(key));
          // -2: gone meanwhile (try at once); -1: no expiry, which only a hand-made key could have.
          waitMs = left === -2 ? 0 : left < 0 ? spacingMs : left + 5;
        } catch (error) {
          logger.warn(
            { err: error, shardId },
            'the store (STORE_URL) cannot be reached to take an identify turn',
          );
          waitMs = RETRY_MS;
        }
        // An abort rejects with the signal's reason, as the loop's own check does.
        if (waitMs > 0)
          await sleep(waitMs, undefined, { signal }).catch((error: unknown) => {
            signal.throwIfAborted();
            throw error;
          });
      }
    },
  };
}

/**
 * discord.js's `ws.buildIdentifyThrottler` for a bot on Redis: asks Discord (through the client's REST, so
 * DISCORD_API_URL) for max_concurrency, as discord.js's own SimpleIdentifyThrottler does, and shares the turns
 * through Redis. `close` ends its connection.
 */
export function redisIdentifyThrottlerBuilder(
  url: string,
  logger: Logger,
): {
  build(manager: {
    fetchGatewayInformation(): Promise<{ session_start_limit: { max_concurrency: number } }>;
  }): Promise<IdentifyThrottler>;
  close(): Promise<void>;
} {
  let connection: RedisConnection | undefined;
  return {
    async build(manager) {
      const info = await manager.fetchGatewayInformation();
      connection ??= connectRedis(url, {
        onError: (error: unknown) =>
          logger.debug({ err: error }, 'identify throttler: redis connection trouble'),
      });
      return createRedisIdentifyThrottler({
        connection,
        maxConcurrency: info.session_start_limit.max_concurrency,
        logger,
      });
    },
    async close() {
      await connection?.close();
    },
  };
}
