import { setTimeout as delay } from 'node:timers/promises';
import { Client, type ClientOptions, Events, GatewayIntentBits, Options, Routes } from 'discord.js';
import OpenAI from 'openai';
import { createBackend } from './backends/index.ts';
import { commands, messageCommands } from './commands/index.ts';
import type { Config } from './config.ts';
import { createAbuseGuard } from './core/abuse.ts';
import { createArenaService } from './core/arena.ts';
import { createArenaLog } from './core/arena-log.ts';
import { createAttachmentStore } from './core/attachments.ts';
import { createBudgetService } from './core/budgets.ts';
import { createContextPolicy } from './core/context-windows.ts';
import { createHistoryLog } from './core/history-log.ts';
import type { Logger, Store } from './core/ports.ts';
import { createRunningTurns } from './core/running-turns.ts';
import { createSessionRepository } from './core/sessions.ts';
import { createSettingsService } from './core/settings.ts';
import { noTelemetry } from './core/telemetry.ts';
import { createThreadService } from './core/threads.ts';
import { createAuditLog } from './discord/audit.ts';
import type { BotContext } from './discord/context.ts';
import { canManageServer, isModerator } from './discord/permissions.ts';
import { createDiscordPresenter } from './discord/presenter.ts';
import { NO_PINGS } from './discord/render.ts';
import { routeEvents } from './discord/router.ts';
import { STORE_PROBE_KEY } from './ops/checks.ts';
import { countingFetch, createMetrics, instrumentStore, serveBotOps } from './ops/index.ts';
import { openPersistence } from './store/index.ts';
import { redisIdentifyThrottlerBuilder } from './store/redis-identify.ts';

const SWEEP_MS = 5000;
/** Waiting for an unreachable Redis at start: the first retry after this, doubling up to STORE_RETRY_MAX_MS. */
const STORE_RETRY_FIRST_MS = 500;
const STORE_RETRY_MAX_MS = 30_000;

export interface RunningBot {
  client: Client;
  stop(): Promise<void>;
}

const systemClock = {
  now: () => Date.now(),
  setTimer(callback: () => void, ms: number) {
    const timer = setTimeout(callback, ms);
    return { cancel: () => clearTimeout(timer) };
  },
};

/** Registers the slash commands: in one guild when DISCORD_GUILD_ID is set (instant), else globally. */
export async function registerCommands(client: Client<true>, guildId: string | undefined): Promise<number> {
  const body = [
    ...commands.map((command) => command.data),
    ...messageCommands.map((command) => command.data),
  ];
  const route = guildId
    ? Routes.applicationGuildCommands(client.application.id, guildId)
    : Routes.applicationCommands(client.application.id);
  await client.rest.put(route, { body });
  return body.length;
}

/**
 * discord.js keeps every message (200 a channel), member and user it sees: over thousands of turns that is most of
 * the bot's memory, and the bot needs none of it. A reply is edited through the Message its post returned, a ballot
 * by id over REST, and who wrote a message or clicked a button comes with the event itself. So messages, members,
 * users and thread members are not kept (the bot's own user and member are), and archived threads are swept.
 */
const isSelf = (entity: { id: string; client: Client }) => entity.id === entity.client.user?.id;
const CACHE_LIMITS = Options.cacheWithLimits({
  ...Options.DefaultMakeCacheSettings,
  MessageManager: 0,
  GuildMessageManager: 0,
  DMMessageManager: 0,
  GuildMemberManager: { maxSize: 0, keepOverLimit: isSelf },
  UserManager: { maxSize: 0, keepOverLimit: isSelf },
  ThreadMemberManager: { maxSize: 0, keepOverLimit: isSelf },
  PresenceManager: 0,
  ReactionManager: 0,
  ReactionUserManager: 0,
  VoiceStateManager: 0,
  GuildInviteManager: 0,
  GuildBanManager: 0,
  GuildScheduledEventManager: 0,
  StageInstanceManager: 0,
  GuildStickerManager: 0,
});
/** Archived threads leave the cache an hour after they were archived (looked at every 10 minutes). */
const SWEEPERS = {
  ...Options.DefaultSweeperSettings,
  threads: { interval: 600, lifetime: 3600 },
};

/**
 * `buildIdentifyThrottler`: when shards identify (discord.js's `ws` option); without it, discord.js's own, which
 * knows only this process's shards.
 */
export function createDiscordClient(
  config: Config,
  options: { buildIdentifyThrottler?: NonNullable<ClientOptions['ws']>['buildIdentifyThrottler'] } = {},
): Client {
  return new Client({
    intents: [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessages, GatewayIntentBits.MessageContent],
    makeCache: CACHE_LIMITS,
    sweepers: SWEEPERS,
    allowedMentions: NO_PINGS,
    ...(config.discord.apiUrl ? { rest: { api: config.discord.apiUrl } } : {}),
    ...(options.buildIdentifyThrottler
      ? { ws: { buildIdentifyThrottler: options.buildIdentifyThrottler } }
      : {}),
  });
}

/**
 * Reads the store once before the bot logs in: a bot that cannot keep state must not take the gateway session (each
 * login counts against Discord's 1,000 a day, and a shard that logs in and dies is respawned to log in again).
 * An SQLite file that cannot be read fails at once; Redis is waited for, retrying with exponential back-off.
 */
export async function reachStore(
  store: Pick<Store, 'get'>,
  {
    logger,
    retrying,
    sleep = delay,
  }: { logger: Logger; retrying: boolean; sleep?: (ms: number) => Promise<unknown> },
): Promise<void> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      await store.get(STORE_PROBE_KEY);
      if (attempt > 1) logger.info({ attempts: attempt }, 'the store is reachable; logging in');
      return;
    } catch (error) {
      if (!retrying) throw error;
      const retryInMs = Math.min(STORE_RETRY_FIRST_MS * 2 ** (attempt - 1), STORE_RETRY_MAX_MS);
      logger.warn(
        { err: error, attempt, retryInMs },
        'the store (STORE_URL) cannot be reached; not logging in to Discord until it can',
      );
      await sleep(retryInMs);
    }
  }
}

/** Wires config -> store and OpenAI client -> core services -> Discord client, logs in and starts answering. */
export async function startBot(config: Config, logger: Logger): Promise<RunningBot> {
  const persistence = openPersistence(config.storeUrl, logger, { lockTtlMs: config.lockTtlMs });
  const { locks, close: closePersistence } = persistence;
  await reachStore(persistence.store, { logger, retrying: /^rediss?:/.test(config.storeUrl) });
  // METRICS_PORT: Prometheus metrics and probes (src/ops); without it nothing is measured.
  const metrics = config.metrics ? createMetrics() : undefined;
  const store = metrics ? instrumentStore(persistence.store, metrics) : persistence.store;
  const openai = new OpenAI({
    apiKey: config.openai.apiKey,
    ...(config.openai.baseUrl ? { baseURL: config.openai.baseUrl } : {}),
    maxRetries: 2,
    timeout: 120_000,
    ...(metrics ? { fetch: countingFetch(metrics, { baseUrl: config.openai.baseUrl }) } : {}),
  });
  const attachments = createAttachmentStore({ store, clock: systemClock, limits: config.attachments });
  const context = createContextPolicy(config.context);
  const backend = createBackend(config.backend, openai, {
    // The chat backend trims by the same windows the core condenses by, so that it never drops turns the core
    // meant to send: with the table right it never has to; with it wrong, the server's refusal leads to a summary.
    chatContextTokens: (model) => context.windowOf(model),
    attachments: { blobs: attachments, forkImageDetail: config.attachments.forkImageDetail },
  });
  const sessions = createSessionRepository(store);
  // On Redis the bot may be one of several processes and machines: they take identify turns together.
  const identify = /^rediss?:/.test(config.storeUrl)
    ? redisIdentifyThrottlerBuilder(config.storeUrl, logger)
    : undefined;
  const client = createDiscordClient(config, identify ? { buildIdentifyThrottler: identify.build } : {});
  const opsServer =
    config.metrics && metrics
      ? await serveBotOps({ ...config.metrics, metrics, client, store: persistence.store, logger })
      : undefined;
  const presenter = createDiscordPresenter({
    client,
    logger,
    audit: createAuditLog({ client, channelId: config.discord.auditChannelId }),
  });
  const arena = createArenaLog(store);
  const budgets = createBudgetService({
    store,
    clock: systemClock,
    prices: config.budgets.prices,
    defaults: config.budgets,
    reserveOutputTokens: config.budgets.reserveOutputTokens,
    exemptModerators: config.budgets.exemptModerators,
  });
  const threads = createThreadService({
    budgets,
    abuse: createAbuseGuard({ store, clock: systemClock, limits: config.abuse }),
    sessions,
    arena,
    log: createHistoryLog(store),
    store,
    locks,
    attachments,
    backend,
    presenter,
    running: createRunningTurns(),
    clock: systemClock,
    logger,
    telemetry: metrics?.telemetry ?? noTelemetry,
    limits: { maxAlternatives: config.alternatives.maxCount, cooldownMs: config.alternatives.cooldownMs },
    context,
    defaults: {
      model: config.openai.model,
      instructions: config.openai.instructions,
      alternativesCount: config.alternatives.defaultCount,
      autoAlternatives: 0,
      alternativesEnabled: true,
      quorum: config.alternatives.quorum,
      voteMs: config.alternatives.voteMs,
      gatherMessages: false,
      blind: config.alternatives.blind,
    },
  });
  const ctx: BotContext = {
    threads,
    settings: createSettingsService({ sessions, maxAlternatives: config.alternatives.maxCount }),
    arena: createArenaService({ arena, store, clock: systemClock, salt: config.exportSalt }),
    config,
    logger,
    attachments,
    isModerator: (interaction) => isModerator(interaction, config.moderatorRoleIds),
    canManageServer,
    budgets,
    commands,
    messageCommands,
  };
  routeEvents({ client, ctx, logger });

  const ready = new Promise<Client<true>>((resolve) => client.once(Events.ClientReady, resolve));
  await client.login(config.discord.token);
  const readyClient = await ready;
  logger.info(
    { user: readyClient.user.tag, guilds: readyClient.guilds.cache.size, backend: backend.kind },
    'logged in',
  );
  const registered = await registerCommands(readyClient, config.discord.guildId);
  logger.info({ count: registered, guildId: config.discord.guildId ?? 'global' }, 'commands registered');
  await threads.resume();
  // Vote deadlines whose timer lived in another process (or one that died) are closed by whoever sweeps first, and
  // threads with waiting messages are looked at again: a process that died during a turn leaves its inbox to the
  // others, who take the thread's lock once it expires.
  const sweeper = setInterval(() => {
    threads.sweep().catch((error: unknown) => logger.warn({ err: error }, 'sweeping threads failed'));
  }, SWEEP_MS);
  sweeper.unref();

  return {
    client,
    async stop() {
      clearInterval(sweeper);
      // Replies still running get the grace period, then end as "stopped"; their last edits need the client.
      await threads.shutdown(config.shutdownGraceMs);
      await client.destroy();
      await identify?.close();
      await closePersistence();
      await opsServer?.close();
    },
  };
}
