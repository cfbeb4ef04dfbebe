// Discord's limits shared by every process of a bot: identifies per bucket and per day, and the global REST limit.
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { createDiscordEmulator, type DiscordEmulator } from './index.ts';

const emulators: DiscordEmulator[] = [];
const sockets: WebSocket[] = [];
afterEach(async () => {
  for (const ws of sockets.splice(0)) ws.terminate();
  for (const emu of emulators.splice(0)) await emu.close();
});

async function emulator(opts: Parameters<typeof createDiscordEmulator>[0]): Promise<DiscordEmulator> {
  const emu = await createDiscordEmulator(opts);
  emulators.push(emu);
  return emu;
}

async function gatewayBot(emu: DiscordEmulator) {
  const response = await fetch(`${emu.apiUrl}/v10/gateway/bot`, {
    headers: { Authorization: `Bot ${emu.botToken}` },
  });
  return (await response.json()) as {
    url: string;
    session_start_limit: { total: number; remaining: number; max_concurrency: number };
  };
}

/** Opens a raw gateway connection, identifies as `shard`, and resolves with the first answer: an op or a close. */
async function identify(emu: DiscordEmulator, shard: [number, number]): Promise<string> {
  const { url } = await gatewayBot(emu);
  const ws = new WebSocket(`${url}?v=10&encoding=json`);
  sockets.push(ws);
  return new Promise((resolve) => {
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as { op: number; t?: string; d: unknown };
      if (frame.op === 10)
        ws.send(JSON.stringify({ op: 2, d: { token: emu.botToken, intents: 513, shard, properties: {} } }));
      else if (frame.op === 0 && frame.t === 'READY') resolve('READY');
      else if (frame.op === 9) resolve(`INVALID_SESSION ${JSON.stringify(frame.d)}`);
    });
    ws.on('close', (code) => resolve(`closed ${code}`));
  });
}

describe('discord emulator: identify limits', () => {
  it('refuses an IDENTIFY too early in its bucket with INVALID_SESSION, and lets other buckets in', async () => {
    const emu = await emulator({ identifyLimits: { maxConcurrency: 2 } });
    expect((await gatewayBot(emu)).session_start_limit).toMatchObject({
      max_concurrency: 2,
      remaining: 1000,
    });
    expect(await identify(emu, [0, 4])).toBe('READY');
    expect(await identify(emu, [1, 4])).toBe('READY');
    expect(await identify(emu, [2, 4])).toBe('INVALID_SESSION false');
    expect(emu.identifies().map((i) => [i.shard[0], i.bucket, i.outcome])).toEqual([
      [0, 0, 'ready'],
      [1, 1, 'ready'],
      [2, 0, 'invalid_session'],
    ]);
    expect((await gatewayBot(emu)).session_start_limit.remaining).toBe(998);
  });

  it('lets a bucket identify again once its interval has passed', async () => {
    const emu = await emulator({ identifyLimits: { maxConcurrency: 1, intervalMs: 300 } });
    expect(await identify(emu, [0, 2])).toBe('READY');
    expect(await identify(emu, [1, 2])).toBe('INVALID_SESSION false');
    await emu.waitFor(() => Date.now() - emu.identifies()[0]!.at >= 300 || undefined);
    expect(await identify(emu, [1, 2])).toBe('READY');
  });

  it('closes an IDENTIFY past the day budget with 4004', async () => {
    const emu = await emulator({ identifyLimits: { maxConcurrency: 2, perDay: 2 } });
    expect(await identify(emu, [0, 2])).toBe('READY');
    expect(await identify(emu, [1, 2])).toBe('READY');
    expect((await gatewayBot(emu)).session_start_limit.remaining).toBe(0);
    expect(await identify(emu, [0, 1])).toBe('closed 4004');
    expect(emu.identifies().at(-1)?.outcome).toBe('over_budget');
  });

  it('only counts identifies when no limits are asked for', async () => {
    const emu = await emulator({});
    expect(await identify(emu, [0, 1])).toBe('READY');
    expect(await identify(emu, [0, 1])).toBe('READY');
    expect((await gatewayBot(emu)).session_start_limit).toMatchObject({ max_concurrency: 1, remaining: 998 });
  });
});

describe('discord emulator: global rate limit', () => {
  it("answers the bot's requests past 50 a second, on any route, with Discord's global 429", async () => {
    const emu = await emulator({});
    const get = (path: string) =>
      fetch(`${emu.apiUrl}/v10${path}`, { headers: { Authorization: `Bot ${emu.botToken}` } });
    // Spread over routes, so no route's own bucket is the limit.
    const paths = ['/gateway/bot', '/users/@me', `/channels/${emu.channelId}`, `/guilds/${emu.guildId}`];
    const responses = await Promise.all(Array.from({ length: 150 }, (_, i) => get(paths[i % paths.length]!)));
    const refused = responses.filter((r) => r.status === 429);
    // All 150 go out at once: some are refused even when a loaded machine spreads them into a second window.
    expect(refused.length).toBeGreaterThan(0);
    expect(responses.filter((r) => r.status === 200).length).toBeGreaterThanOrEqual(50);
    const first = refused[0]!;
    expect(first.headers.get('x-ratelimit-global')).toBe('true');
    expect(first.headers.get('x-ratelimit-scope')).toBe('global');
    expect(Number(first.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(first.headers.get('x-ratelimit-bucket')).toBeNull();
    const body = (await first.json()) as { global: boolean; retry_after: number; message: string };
    expect(body).toMatchObject({ global: true, message: 'You are being rate limited.' });
    expect(body.retry_after).toBeLessThanOrEqual(1);
  });

  it('counts nothing when globalRequestsPerSecond is 0', async () => {
    const emu = await emulator({ globalRequestsPerSecond: 0 });
    const responses = await Promise.all(
      Array.from({ length: 60 }, () =>
        fetch(`${emu.apiUrl}/v10/users/@me`, { headers: { Authorization: `Bot ${emu.botToken}` } }),
      ),
    );
    // The route's own bucket (50 a second) still applies; none of its refusals is global.
    expect(responses.filter((r) => r.headers.get('x-ratelimit-global'))).toEqual([]);
  });
});
