// A Discord emulator (REST under /api/v10 and a gateway) for the real discord.js Client, with a test driver.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config, Ctx } from './context.ts';
import { Driver } from './driver.ts';
import { Gateway } from './gateway.ts';
import { botTokenFor } from './ids.ts';
import { RestServer } from './rest.ts';
import { warmUpValidators } from './spec.ts';
import { Store } from './state.ts';
import type { DiscordEmulator, DiscordEmulatorOptions } from './types.ts';

export { shardOf } from './gateway.ts';
export type {
  AttachmentDownload,
  AttachmentServe,
  AttachmentView,
  ChannelView,
  DiscordEmulator,
  DiscordEmulatorOptions,
  FailureSpec,
  GatewaySessionView,
  IdentifyView,
  InteractionHandle,
  MessageView,
  Pinged,
  RecordedRequest,
} from './types.ts';

export async function createDiscordEmulator(options: DiscordEmulatorOptions = {}): Promise<DiscordEmulator> {
  warmUpValidators();
  const config: Config = {
    messageCreate: options.rateLimits?.messageCreate ?? { limit: 5, windowMs: 5000 },
    messageEdit: options.rateLimits?.messageEdit ?? { limit: 5, windowMs: 5000 },
    defaultLimit: { limit: 50, windowMs: 1000 },
    interactionAckMs: options.interactionAckMs ?? 3000,
    interactionTokenTtlMs: options.interactionTokenTtlMs ?? 15 * 60 * 1000,
    recommendedShards: options.recommendedShards ?? 1,
    identify: {
      enforced: options.identifyLimits !== undefined,
      maxConcurrency: options.identifyLimits?.maxConcurrency ?? 1,
      perDay: options.identifyLimits?.perDay ?? 1000,
      intervalMs: options.identifyLimits?.intervalMs ?? 5000,
    },
    globalRequestsPerSecond: options.globalRequestsPerSecond ?? 50,
  };
  if (!Number.isInteger(config.recommendedShards) || config.recommendedShards < 1)
    throw new Error('recommendedShards must be a whole number of at least 1');
  const store = new Store({ botManageThreads: options.botManageThreads ?? false });
  const botToken = botTokenFor(store.botUserId);
  const gateway = new Gateway(store, botToken, config.identify);
  const ctx: Ctx = { store, gateway, config, botToken, baseUrl: '', timers: new Set() };
  const general = store.addTextChannel('general');
  const rest = new RestServer(ctx);
  const driver = new Driver(ctx, rest);

  const server = createServer((req, res) => rest.handle(req, res));
  // Idle keep-alive connections are closed by the client only: when the server closes one as its timer runs out, a
  // request the client sends on it at that moment fails with ECONNRESET, and on a busy machine timers run late.
  server.keepAliveTimeout = 0;
  server.on('upgrade', (req, socket, head) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path === '/gateway' || path === '/gateway/') gateway.handleUpgrade(req, socket, head);
    else socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  ctx.baseUrl = `http://127.0.0.1:${port}`;
  gateway.url = `ws://127.0.0.1:${port}/gateway`;

  let closed = false;
  return {
    apiUrl: `${ctx.baseUrl}/api`,
    botToken,
    applicationId: store.applicationId,
    botUserId: store.botUserId,
    guildId: store.guildId,
    channelId: general.id,
    moderatorRoleId: store.moderatorRoleId,
    createUser: (u) => driver.createUser(u),
    createGuild: (g) => driver.createGuild(g),
    createRole: (r) => driver.createRole(r),
    createTextChannel: (name, guildId) => driver.createTextChannel(name, guildId),
    createThread: (t) => driver.createThread(t),
    postMessage: (channelId, userId, content, opts) => driver.postMessage(channelId, userId, content, opts),
    expireAttachments: () => driver.expireAttachments(),
    runCommand: (c) => driver.runCommand(c),
    runMessageCommand: (c) => driver.runMessageCommand(c),
    clickButton: (c) => driver.clickButton(c),
    allowCommand: (name, userId) => driver.allowCommand(name, userId),
    autocomplete: (c) => driver.autocomplete(c),
    messages: (channelId) => driver.messages(channelId),
    message: (id) => driver.message(id),
    channel: (id) => driver.channel(id),
    threadsOf: (parentId) => driver.threadsOf(parentId),
    archiveThread: (threadId, opts) => driver.archiveThread(threadId, opts),
    lockThread: (threadId, locked) => driver.lockThread(threadId, locked),
    unarchiveThread: (threadId) => driver.unarchiveThread(threadId),
    waitFor: (probe, opts) => driver.waitFor(probe, opts),
    requests: rest.requests,
    attachmentDownloads: rest.attachmentDownloads,
    commands: (guildId) => driver.commands(guildId),
    injectFailure: (f) => rest.injectFailure(f),
    dropConnection: () => gateway.drop(),
    gatewaySessions: () => gateway.sessionViews(),
    identifies: () => gateway.identifies.map((i) => ({ ...i, shard: [...i.shard] })),
    clientConnected: () => driver.clientConnected(),
    close: async () => {
      if (closed) return;
      closed = true;
      for (const t of ctx.timers) clearTimeout(t);
      ctx.timers.clear();
      await gateway.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
