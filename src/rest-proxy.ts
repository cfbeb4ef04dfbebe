/**
 * `npm run rest-proxy`: one HTTP proxy in front of Discord's REST API for every process of the bot, on every machine
 * (each bot sets DISCORD_API_URL=http://<proxy host>:<REST_PROXY_PORT>/api). Discord's global limit (50 requests a
 * second for the whole bot) and each route's bucket are then kept in one place, whatever the number of processes.
 *
 * It is discord.js's own proxy (@discordjs/proxy's proxyRequests over one @discordjs/rest REST), set up as the
 * project's container (@discordjs/proxy-container, a Docker image) sets it up: the REST keeps the buckets and the
 * global count, and answers a caller 429 with Retry-After instead of queueing (`rejectOnRateLimit`), so the caller's
 * own client waits and retries, and Discord never sees the request that would have gone over. Each caller's
 * Authorization header goes through as it is: the proxy holds no token.
 * Run one proxy per bot: two would each allow 50 a second.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { proxyRequests } from '@discordjs/proxy';
// From @discordjs/rest itself, not through discord.js: discord.js loads its CommonJS build, @discordjs/proxy its ES
// module build, and the proxy tells a rate limit or an API error from a crash by `instanceof` on its own build's
// classes. With discord.js's REST every such error became a 502 instead of Discord's answer.
import { REST } from '@discordjs/rest';
import { loadRestProxyConfigOrExit } from './config.ts';
import { createLogger } from './logger.ts';

const config = loadRestProxyConfigOrExit();
const logger = createLogger(config.logLevel).child({ component: 'rest-proxy' });

/**
 * The proxy counts a second from its first request, Discord from the first one it receives: the two windows never
 * quite line up, so at full load some requests of the proxy's next second land in Discord's current one. Keeping 5 a
 * second in hand makes that rarer, not impossible (bench part 9 counts them): such a 429 goes back to the bot, whose
 * client waits its Retry-After and sends the request again. A limiter over any sliding second would close the gap;
 * @discordjs/rest's global count is a fixed window and cannot be replaced.
 */
const GLOBAL_REQUESTS_PER_SECOND = 45;

const rest = new REST({
  rejectOnRateLimit: () => true,
  retries: 0,
  globalRequestsPerSecond: GLOBAL_REQUESTS_PER_SECOND,
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
