/**
 * `npm run rest-proxy`: one HTTP proxy in front of Discord's REST API for every process of the bot, on every machine
 * (each bot sets DISCORD_API_URL=http://<proxy host>:<REST_PROXY_PORT>/api). Discord's global limit (50 requests a
 * second for the whole bot) and each route's bucket are then kept in one place, whatever the number of processes.
 *
 * It is discord.js's own proxy (@discordjs/proxy's proxyRequests over one @discordjs/rest REST), set up as the
 * project's container (@discordjs/proxy-container, a Docker image) sets it up: the REST keeps the buckets, and answers
 * a caller 429 with Retry-After instead of queueing (`rejectOnRateLimit`), so the caller's own client waits and
 * retries, and Discord never sees the request that would have gone over. The global count is ours (below): requests
 * wait up to 5 s for their turn in a sliding second. Each caller's
 * Authorization header goes through as it is: the proxy holds no token.
 * Run one proxy per bot: two would each allow 50 a second.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { proxyRequests } from '@discordjs/proxy';
// From @discordjs/rest itself, not through discord.js: discord.js loads its CommonJS build, @discordjs/proxy its ES
// module build, and the proxy tells a rate limit or an API error from a crash by `instanceof` on its own build's
// classes. With discord.js's REST every such error became a 502 instead of Discord's answer.
import { DefaultRestOptions, REST } from '@discordjs/rest';
import { loadRestProxyConfigOrExit } from './config.ts';
import { createLogger } from './logger.ts';
import { createSlidingWindow } from './sliding-window.ts';

const config = loadRestProxyConfigOrExit();
const logger = createLogger(config.logLevel).child({ component: 'rest-proxy' });

/**
 * Requests started over any sliding second, at most. @discordjs/rest counts its global limit over fixed seconds of its
 * own, which never line up with Discord's: at full load 45 at the end of one and 45 at the start of the next fell in
 * one of Discord's and met its global 429. The window below has no such seam; 45 of Discord's 50 leave room for the
 * time a request takes to get there. Interaction callbacks are not counted by Discord, and not here either.
 */
const GLOBAL_REQUESTS_PER_SECOND = 45;
/** A request whose turn is further away than this is refused with the wait (the caller gets a 429), not held. */
const MAX_HOLD_MS = 5000;
const globalWindow = createSlidingWindow(GLOBAL_REQUESTS_PER_SECOND, 1000);

/** Discord's own answer to a request over the global limit: @discordjs/rest then refuses it as it would Discord's. */
function globalLimitAnswer(retryAfterMs: number): Response {
  const retryAfter = retryAfterMs / 1000;
  return new Response(
    JSON.stringify({ message: 'You are being rate limited.', retry_after: retryAfter, global: true }),
    {
      status: 429,
      headers: {
        'Content-Type': 'application/json',
        'Retry-After': String(Math.ceil(retryAfter)),
        'X-RateLimit-Global': 'true',
        'X-RateLimit-Scope': 'global',
      },
    },
  );
}

const rest = new REST({
  rejectOnRateLimit: () => true,
  retries: 0,
  // Never the one that binds: the sliding window above lets fewer through in any second.
  globalRequestsPerSecond: 50,
  // Each request waits for its turn in the window right before it goes to Discord: after @discordjs/rest's own
  // per-route queues, which would otherwise bunch requests admitted earlier into a later second.
  makeRequest: async (url, init) => {
    if (!url.includes('/interactions/')) {
      const turn = await globalWindow.admit(MAX_HOLD_MS);
      if (!turn.admitted) return globalLimitAnswer(turn.retryAfterMs);
    }
    return DefaultRestOptions.makeRequest(url, init);
  },
  ...(config.upstreamUrl ? { api: config.upstreamUrl } : {}),
});
rest.on('rateLimited', (info) =>
  logger.debug(
    { global: info.global, route: info.route, method: info.method, retryAfterMs: info.retryAfter },
    'a request would go over a Discord limit: the caller is told to retry later',
  ),
);
const proxy = proxyRequests(rest);
const server = createServer((req, res) => {
  // proxyRequests sets the status of every answer it knows (Discord's, or its own 429) and ends the response however
  // the request went: one it could not pass on (Discord unreachable) would otherwise go back as an empty 200.
  res.statusCode = 502;
  Promise.resolve(proxy(req, res)).catch((error: unknown) => {
    logger.warn({ err: error, method: req.method }, 'a request could not be passed on to Discord');
    res.end();
  });
});

await new Promise<void>((resolve, reject) => {
  server.once('error', reject);
  server.listen(config.port, config.host, () => resolve());
}).catch((error: unknown) => {
  logger.fatal({ err: error }, 'cannot listen on REST_PROXY_HOST:REST_PROXY_PORT');
  process.exit(1);
});
const { port } = server.address() as AddressInfo;
const host = config.host.includes(':') ? `[${config.host}]` : config.host;
logger.info(
  { url: `http://${host}:${port}/api`, upstream: config.upstreamUrl ?? 'https://discord.com/api' },
  'REST proxy listening: set DISCORD_API_URL to its url',
);

function stop(signal: string) {
  logger.info({ signal }, 'stopping the REST proxy');
  server.close(() => process.exit(0));
  server.closeAllConnections();
}
process.once('SIGINT', () => stop('SIGINT'));
process.once('SIGTERM', () => stop('SIGTERM'));
