import { ChannelType, DiscordAPIError, type TextChannel } from 'discord.js';
import { afterEach, describe, expect, it } from 'vitest';
import { start, stopAll } from './harness.ts';
import { createDiscordEmulator, type DiscordEmulator } from './index.ts';

const emulators: DiscordEmulator[] = [];

afterEach(async () => {
  await stopAll();
  for (const e of emulators.splice(0)) await e.close();
});

async function bare(opts: Parameters<typeof createDiscordEmulator>[0] = {}): Promise<DiscordEmulator> {
  const emu = await createDiscordEmulator(opts);
  emulators.push(emu);
  return emu;
}

function api(
  emu: DiscordEmulator,
  path: string,
  init: { method?: string; body?: unknown; auth?: boolean } = {},
) {
  const headers: Record<string, string> = { 'Content-Type': 'application/json' };
  if (init.auth !== false) headers.Authorization = `Bot ${emu.botToken}`;
  return fetch(`${emu.apiUrl}/v10${path}`, {
    method: init.method ?? 'GET',
    headers,
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
  });
}

function textChannel(client: import('discord.js').Client, id: string): TextChannel {
  const ch = client.channels.cache.get(id);
  if (!ch || ch.type !== ChannelType.GuildText) throw new Error(`no text channel ${id}`);
  return ch;
}

describe('discord emulator: REST', () => {
  it('requires the bot token and answers Discord error codes', async () => {
    const emu = await bare();
    expect((await api(emu, '/users/@me', { auth: false })).status).toBe(401);
    const me = await api(emu, '/users/@me');
    expect(await me.json()).toMatchObject({ id: emu.botUserId, bot: true });
    const unknownChannel = await api(emu, '/channels/123456789012345678');
    expect(unknownChannel.status).toBe(404);
    expect(await unknownChannel.json()).toEqual({ message: 'Unknown Channel', code: 10003 });
    const unknownMessage = await api(emu, `/channels/${emu.channelId}/messages/123456789012345678`);
    expect(await unknownMessage.json()).toMatchObject({ code: 10008 });
    const invalid = await api(emu, `/channels/${emu.channelId}/messages`, {
      method: 'POST',
      body: { content: 5 },
    });
    expect(invalid.status).toBe(400);
    expect(await invalid.json()).toMatchObject({
      code: 50035,
      message: 'Invalid Form Body',
      errors: { content: {} },
    });
    const typing = await api(emu, `/channels/${emu.channelId}/typing`, { method: 'POST' });
    expect(typing.status).toBe(204);
    expect(typing.headers.get('content-type')).toBeNull();
    expect(emu.requests.map((r) => r.status)).toEqual([401, 200, 404, 404, 400, 204]);
    expect(emu.requests[4]?.route).toBe('POST /channels/:channel_id/messages');
  });

  it('paces a raw client with headers, then answers 429 past the budget', async () => {
    const emu = await bare({ rateLimits: { messageEdit: { limit: 5, windowMs: 1000 } } });
    const created = await api(emu, `/channels/${emu.channelId}/messages`, {
      method: 'POST',
      body: { content: 'v0' },
    });
    const { id } = (await created.json()) as { id: string };
    const remaining: (string | null)[] = [];
    for (let n = 1; n <= 5; n++) {
      const res = await api(emu, `/channels/${emu.channelId}/messages/${id}`, {
        method: 'PATCH',
        body: { content: `v${n}` },
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('x-ratelimit-limit')).toBe('5');
      expect(res.headers.get('x-ratelimit-bucket')).toBeTruthy();
      expect(Number(res.headers.get('x-ratelimit-reset-after'))).toBeGreaterThan(0);
      remaining.push(res.headers.get('x-ratelimit-remaining'));
    }
    expect(remaining).toEqual(['4', '3', '2', '1', '0']);
    const limited = await api(emu, `/channels/${emu.channelId}/messages/${id}`, {
      method: 'PATCH',
      body: { content: 'v6' },
    });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(limited.headers.get('x-ratelimit-remaining')).toBe('0');
    const body = (await limited.json()) as { message: string; retry_after: number; global: boolean };
    expect(body.message).toBe('You are being rate limited.');
    expect(body.retry_after).toBeGreaterThan(0);
    expect(body.retry_after).toBeLessThanOrEqual(1);
    expect(body.global).toBe(false);
    expect(emu.message(id)?.content).toBe('v5');
  });

  it('lets discord.js edit 12 times and send 12 messages in a row without a single 429', async () => {
    const { emu, client } = await start({
      rateLimits: { messageEdit: { limit: 5, windowMs: 500 }, messageCreate: { limit: 5, windowMs: 500 } },
    });
    const ch = textChannel(client, emu.channelId);
    const msg = await ch.send('0');
    for (let n = 1; n <= 12; n++) await msg.edit(String(n));
    expect(emu.message(msg.id)).toMatchObject({ content: '12', editCount: 12 });
    await Promise.all(Array.from({ length: 11 }, (_, n) => ch.send(`m${n}`)));
    expect(emu.messages(emu.channelId)).toHaveLength(12);
    expect(emu.requests.filter((r) => r.status === 429)).toEqual([]);
  });

  it('injects failures on a route', async () => {
    const { emu, client } = await start();
    const ch = textChannel(client, emu.channelId);
    emu.injectFailure({
      route: 'POST /channels/:channel_id/messages',
      status: 403,
      code: 50001,
      message: 'Missing Access',
    });
    const err = await ch.send('nope').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DiscordAPIError);
    expect((err as DiscordAPIError).code).toBe(50001);
    emu.injectFailure({ route: 'POST /channels/:channel_id/messages', status: 429, retryAfterMs: 50 });
    const sent = await ch.send('after a 429');
    expect(emu.message(sent.id)?.content).toBe('after a 429');
    expect(
      emu.requests.filter((r) => r.route === 'POST /channels/:channel_id/messages').map((r) => r.status),
    ).toEqual([403, 429, 200]);
  });

  it('serves the application, guild, members and roles', async () => {
    const { emu, client } = await start();
    const alice = emu.createUser({ username: 'alice', manageThreads: true });
    const app = await client.application?.fetch();
    expect(app?.id).toBe(emu.applicationId);
    const guild = await client.guilds.fetch({ guild: emu.guildId, force: true });
    const member = await guild.members.fetch(alice.id);
    expect(member.user.username).toBe('alice');
    expect(member.roles.cache.has(emu.moderatorRoleId)).toBe(true);
    expect(member.permissions.has('ManageThreads')).toBe(true);
    const roles = await guild.roles.fetch();
    expect(roles.has(emu.guildId)).toBe(true);
    const me = await guild.members.fetchMe();
    expect(me.permissions.has('ManageThreads')).toBe(false);
    expect(me.permissions.has('SendMessagesInThreads')).toBe(true);
  });

  it('joins a thread and archives it as its owner through PATCH /channels/:id', async () => {
    const { emu, client } = await start();
    const alice = emu.createUser({ username: 'alice' });
    const threadId = emu.createThread({ parentId: emu.channelId, name: 'someone else', ownerId: alice.id });
    const thread = await client.channels.fetch(threadId);
    if (!thread?.isThread()) throw new Error('no thread');
    await thread.join();
    expect(emu.channel(threadId)?.memberIds).toContain(emu.botUserId);
    const err = await thread.setArchived(true).catch((e: unknown) => e);
    expect((err as DiscordAPIError).code).toBe(50013);
    const own = await textChannel(client, emu.channelId).threads.create({ name: 'own' });
    await own.setName('renamed');
    expect(emu.channel(own.id)?.name).toBe('renamed');
  });
});
