import { ChannelType, Client, Events, type Interaction, type Message, PermissionFlagsBits } from 'discord.js';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_INTENTS, once } from './harness.ts';
import { createDiscordEmulator, type DiscordEmulator, shardOf } from './index.ts';

const open: { emu: DiscordEmulator; clients: Client[] }[] = [];

afterEach(async () => {
  for (const { emu, clients } of open.splice(0)) {
    await Promise.all(clients.map((c) => c.destroy()));
    await emu.close();
  }
});

async function world() {
  const emu = await createDiscordEmulator();
  const entry = { emu, clients: [] as Client[] };
  open.push(entry);
  const login = async (shard: { id: number; count: number }) => {
    const client = new Client({
      intents: DEFAULT_INTENTS,
      rest: { api: emu.apiUrl },
      shards: [shard.id],
      shardCount: shard.count,
    });
    entry.clients.push(client);
    const ready = once(client, Events.ClientReady);
    await client.login(emu.botToken);
    await ready;
    return client;
  };
  return { emu, login };
}

describe('discord emulator: several guilds', () => {
  it('puts a guild on the shard asked for, and sends each guild to its own shard only', async () => {
    const { emu, login } = await world();
    const alice = emu.createUser({ username: 'alice' });
    const guilds = [0, 1, 2].map((shard) => emu.createGuild({ name: `on ${shard}`, shard: [shard, 3] }));
    expect(guilds.map((g) => shardOf(g.id, 3))).toEqual([0, 1, 2]);
    expect(new Set([emu.guildId, ...guilds.map((g) => g.id)]).size).toBe(4);

    const clients = [];
    for (const id of [0, 1, 2]) clients.push(await login({ id, count: 3 }));
    const home = shardOf(emu.guildId, 3);
    for (const [shard, client] of clients.entries()) {
      const expected = [guilds[shard]!.id, ...(shard === home ? [emu.guildId] : [])].sort();
      await emu.waitFor(() => client.guilds.cache.size === expected.length);
      expect([...client.guilds.cache.keys()].sort()).toEqual(expected);
      const guild = client.guilds.cache.get(guilds[shard]!.id)!;
      // Its own @everyone (the guild's id), its own general channel, the bot as a member with its own role.
      expect(guild.name).toBe(`on ${shard}`);
      expect(guild.roles.everyone.id).toBe(guild.id);
      expect([...guild.channels.cache.keys()]).toEqual([guilds[shard]!.channelId]);
      expect(guild.members.me?.roles.cache.some((r) => r.managed)).toBe(true);
    }
    expect(
      emu
        .gatewaySessions()
        .map((s) => s.guildIds.length)
        .reduce((a, b) => a + b),
    ).toBe(4);

    // A message in each guild reaches that guild's shard, with that guild's id and member.
    const seen = clients.map((client) => {
      const got: { guild: string | null; content: string; member: boolean }[] = [];
      client.on(Events.MessageCreate, (m: Message) =>
        got.push({ guild: m.guildId, content: m.content, member: m.member !== null }),
      );
      return got;
    });
    for (const [shard, g] of guilds.entries()) emu.postMessage(g.channelId, alice.id, `hi ${shard}`);
    await emu.waitFor(() => seen.every((s) => s.length === 1));
    expect(seen).toEqual(guilds.map((g, shard) => [{ guild: g.id, content: `hi ${shard}`, member: true }]));

    // The bot's thread in guild 2 belongs to guild 2, and so do its events.
    const channel = await clients[2]!.channels.fetch(guilds[2]!.channelId);
    if (channel?.type !== ChannelType.GuildText) throw new Error('general is no text channel');
    const thread = await channel.threads.create({ name: 'in guild 2' });
    expect(thread.guildId).toBe(guilds[2]!.id);
    const answered = once(clients[2]!, Events.MessageCreate, (m) => m.channelId === thread.id);
    emu.postMessage(thread.id, alice.id, 'in the thread');
    expect((await answered)[0].guildId).toBe(guilds[2]!.id);

    // An interaction there names guild 2, with alice's membership and permissions in it.
    const interacted = once(clients[2]!, Events.InteractionCreate);
    emu.runCommand({ channelId: thread.id, userId: alice.id, name: 'ping' });
    const [interaction] = (await interacted) as [Interaction];
    expect(interaction.guildId).toBe(guilds[2]!.id);
    expect(interaction.inCachedGuild() && interaction.member.id).toBe(alice.id);
    expect(interaction.memberPermissions?.has(PermissionFlagsBits.ManageThreads)).toBe(false);
  });

  it('keeps roles, members, channels and guild commands to their own guild', async () => {
    const { emu, login } = await world();
    const mod = emu.createUser({ username: 'mod', manageThreads: true });
    const other = emu.createGuild({ name: 'other' });
    const late = emu.createUser({ username: 'late' });
    const client = await login({ id: 0, count: 1 });
    const auth = { headers: { Authorization: `Bot ${emu.botToken}` } };
    const get = async (path: string) => {
      const res = await fetch(`${emu.apiUrl}/v10${path}`, auth);
      return { status: res.status, body: (await res.json()) as Record<string, unknown>[] };
    };

    const channels = await get(`/guilds/${other.id}/channels`);
    expect(channels.body.map((c) => [c.id, c.guild_id])).toEqual([[other.channelId, other.id]]);
    const roles = (await get(`/guilds/${other.id}/roles`)).body;
    expect(roles.map((r) => r.name)).toEqual(['@everyone', 'Moderator', 'threadfork']);
    expect(roles.some((r) => r.id === emu.moderatorRoleId)).toBe(false);
    // Everyone is a member of every guild; the default guild's moderator moderates here too.
    const modRole = roles.find((r) => r.name === 'Moderator')!.id;
    expect((await get(`/guilds/${other.id}/members/${mod.id}`)).body).toMatchObject({ roles: [modRole] });
    expect((await get(`/guilds/${other.id}/members/${late.id}`)).body).toMatchObject({ roles: [] });
    expect((await get('/guilds/1234567890123456789/channels')).status).toBe(404);
    // A guild made while the bot is connected arrives as GUILD_CREATE (the bot was added to a server).
    const third = emu.createGuild({ name: 'third' });
    await emu.waitFor(() => client.guilds.cache.get(third.id)?.channels.cache.has(third.channelId));

    // Commands registered in the default guild only do not exist in the other one, as in Discord.
    await client.application?.commands.set([{ name: 'chat', description: 'start' }], emu.guildId);
    expect(() => emu.runCommand({ channelId: other.channelId, userId: mod.id, name: 'chat' })).toThrow(
      /not registered in guild/,
    );
    const got = once(client, Events.InteractionCreate);
    emu.runCommand({ channelId: emu.channelId, userId: mod.id, name: 'chat' });
    expect((await got)[0].guildId).toBe(emu.guildId);
    // Registered globally, they work in both.
    await client.application?.commands.set([{ name: 'chat', description: 'start' }]);
    await client.application?.commands.set([], emu.guildId);
    const there = once(client, Events.InteractionCreate);
    emu.runCommand({ channelId: other.channelId, userId: mod.id, name: 'chat' });
    const [interaction] = (await there) as [Interaction];
    expect(interaction.guildId).toBe(other.id);
    expect(interaction.memberPermissions?.has(PermissionFlagsBits.ManageThreads)).toBe(true);
  });
});
