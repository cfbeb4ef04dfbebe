import { Client, Events, GatewayIntentBits, Routes } from 'discord.js';
import OpenAI from 'openai';
import { createBackend } from './backends/index.ts';
import { commands, messageCommands } from './commands/index.ts';
import type { Config } from './config.ts';
import { createArenaService } from './core/arena.ts';
import { createArenaLog } from './core/arena-log.ts';
import { createHistoryLog } from './core/history-log.ts';
import type { Logger } from './core/ports.ts';
import { createRunningTurns } from './core/running-turns.ts';
import { createSessionRepository } from './core/sessions.ts';
import { createSettingsService } from './core/settings.ts';
import { noTelemetry } from './core/telemetry.ts';
import { createThreadService } from './core/threads.ts';
import { createAuditLog } from './discord/audit.ts';
import type { BotContext } from './discord/context.ts';
import { isModerator } from './discord/permissions.ts';
import { createDiscordPresenter } from './discord/presenter.ts';
import { NO_PINGS } from './discord/render.ts';
import { routeEvents } from './discord/router.ts';
import { countingFetch, createMetrics, instrumentStore, serveBotOps } from './ops/index.ts';
import { openPersistence } from './store/index.ts';

const SWEEP_MS = 5000;

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

export function createDiscordClient(config: Config): Client {
  return new Client({
    intents: [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessages, GatewayIntentBits.MessageContent],
    allowedMentions: NO_PINGS,
    ...(config.discord.apiUrl ? { rest: { api: config.discord.apiUrl } } : {}),
  });
}

/** Wires config -> store and OpenAI client -> core services -> Discord client, logs in and starts answering. */
export async function startBot(config: Config, logger: Logger): Promise<RunningBot> {
  const persistence = openPersistence(config.storeUrl, logger, { lockTtlMs: config.lockTtlMs });
  const { locks, close: closePersistence } = persistence;
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
  const backend = createBackend(config.backend, openai, { chatContextTokens: config.chatContextTokens });
  const sessions = createSessionRepository(store);
  const client = createDiscordClient(config);
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
  const threads = createThreadService({
    sessions,
    arena,
    log: createHistoryLog(store),
    store,
    locks,
    backend,
    presenter,
    running: createRunningTurns(),
    clock: systemClock,
    logger,
    telemetry: metrics?.telemetry ?? noTelemetry,
    limits: { maxAlternatives: config.alternatives.maxCount, cooldownMs: config.alternatives.cooldownMs },
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
    isModerator: (interaction) => isModerator(interaction, config.moderatorRoleIds),
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
      await closePersistence();
      await opsServer?.close();
    },
  };
}
