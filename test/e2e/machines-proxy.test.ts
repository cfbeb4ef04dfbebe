// `npm run rest-proxy` in front of the Discord emulator: Discord's answers go back to the caller as Discord gave
// them, and the bot's requests together stay under the global limit, the ones over it answered 429 by the proxy.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDiscordEmulator, type DiscordEmulator } from '../emulators/discord/index.ts';
import { type BotProcess, spawnBot } from './harness.ts';

const REST_PROXY_ENTRY = new URL('../../src/rest-proxy.ts', import.meta.url).pathname;

describe('npm run rest-proxy', () => {
  let discord: DiscordEmulator;
  let proxy: BotProcess;
  let api: string;

  beforeAll(async () => {
    discord = await createDiscordEmulator();
    proxy = spawnBot(
      { REST_PROXY_UPSTREAM: discord.apiUrl, REST_PROXY_PORT: '0', LOG_LEVEL: 'info' },
      process.cwd(),
      REST_PROXY_ENTRY,
    );
    api = (await proxy.waitForLog((l) => l.msg.startsWith('REST proxy listening'), 30_000)).url as string;
  }, 60_000);
  afterAll(async () => {
    await proxy?.kill();
    await discord?.close();
  });

  const get = (path: string, auth = true) =>
    fetch(`${api}/v10${path}`, auth ? { headers: { Authorization: `Bot ${discord.botToken}` } } : {});

  it("passes Discord's answers on: data, and errors with their status and code", async () => {
    const ok = await get(`/channels/${discord.channelId}`);
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { id: string }).id).toBe(discord.channelId);
    const missing = await get('/channels/123456789012345678');
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ code: 10003 });
    const unauthorized = await get(`/channels/${discord.channelId}`, false);
    expect(unauthorized.status).toBe(401);
  });

  it('keeps a burst of requests under the global limit over any second, holding them a while, then answering 429 itself', async () => {
    const before = discord.requests.length;
    const paths = [
      '/users/@me',
      `/channels/${discord.channelId}`,
      `/guilds/${discord.guildId}`,
      '/gateway/bot',
    ];
    // 45 a second pass and up to 5 s of them are held for their turn: 1,000 at once are more than that, even when a
    // busy machine takes seconds to send them all.
    const responses = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => get(paths[i % paths.length]!)),
    );
    const statuses = responses.map((r) => r.status);
    expect(statuses.filter((s) => s !== 200 && s !== 429)).toEqual([]);
    const heldBack = responses.filter((r) => r.status === 429);
    expect(heldBack.length).toBeGreaterThan(0);
    for (const r of heldBack) expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
    // Held ones went on: more reached Discord than one second's worth.
    const reached = discord.requests.slice(before);
    expect(reached.length).toBeGreaterThan(100);
    expect(reached.length).toBeLessThan(1000);
    // What reached Discord stayed within its limit in every second, and Discord answered no 429.
    expect(reached.filter((r) => r.status === 429)).toEqual([]);
    const times = reached.map((r) => r.at).sort((a, b) => a - b);
    const busiestSecond = Math.max(
      ...times.map((t, k) => times.filter((u, m) => m >= k && u < t + 1000).length),
    );
    // 45 a second leave 5 for the time requests take to arrive: a busy machine may bunch a few of them on the way in
    // (a fixed window of 45 lets up to 90 through in one second, a count taken before @discordjs/rest's queues 70).
    expect(busiestSecond).toBeLessThanOrEqual(55);
  });
});

describe('npm run rest-proxy without Discord', () => {
  it('answers 502 when Discord cannot be reached, never an empty success', async () => {
    // A port nothing listens on: an emulator started and closed again.
    const gone = await createDiscordEmulator();
    await gone.close();
    const proxy = spawnBot(
      { REST_PROXY_UPSTREAM: gone.apiUrl, REST_PROXY_PORT: '0', LOG_LEVEL: 'info' },
      process.cwd(),
      REST_PROXY_ENTRY,
    );
    try {
      const api = (await proxy.waitForLog((l) => l.msg.startsWith('REST proxy listening'), 30_000))
        .url as string;
      const response = await fetch(`${api}/v10/users/@me`, { headers: { Authorization: 'Bot x' } });
      expect(response.status).toBe(502);
      await proxy.waitForLog((l) => l.msg === 'a request could not be passed on to Discord');
    } finally {
      await proxy.kill();
    }
  }, 60_000);
});
