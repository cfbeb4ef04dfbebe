import { Client, Events, type Message } from 'discord.js';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { DEFAULT_INTENTS, once } from './harness.ts';
import { createDiscordEmulator, type DiscordEmulator, shardOf } from './index.ts';

const open: { emu: DiscordEmulator; clients: Client[] }[] = [];

afterEach(async () => {
  for (const { emu, clients } of open.splice(0)) {
    await Promise.all(clients.map((c) => c.destroy()));
    await emu.close();
  }
});

async function world(recommendedShards?: number) {
  const emu = await createDiscordEmulator(recommendedShards ? { recommendedShards } : {});
  const entry = { emu, clients: [] as Client[] };
  open.push(entry);
  const login = async (shard?: { id: number; count: number }) => {
    const client = new Client({
      intents: DEFAULT_INTENTS,
      rest: { api: emu.apiUrl },
      ...(shard ? { shards: [shard.id], shardCount: shard.count } : {}),
    });
    entry.clients.push(client);
    const ready = once(client, Events.ClientReady);
    await client.login(emu.botToken);
    await ready;
    return client;
  };
  return { emu, login };
}

/** Collects the contents of the messageCreate events a client gets. */
function received(client: Client): string[] {
  const seen: string[] = [];
  client.on(Events.MessageCreate, (m: Message) => seen.push(m.content));
  return seen;
}

describe('discord emulator: sharding', () => {
  it('recommends the configured shard count and routes the guild to (guild_id >> 22) % count', async () => {
    const { emu, login } = await world(2);
    const info = (await (
      await fetch(`${emu.apiUrl}/v10/gateway/bot`, { headers: { Authorization: `Bot ${emu.botToken}` } })
    ).json()) as { shards: number };
    expect(info.shards).toBe(2);

    const owner = shardOf(emu.guildId, 2);
    const clients = [await login({ id: 0, count: 2 }), await login({ id: 1, count: 2 })];
    expect(emu.gatewaySessions().map((s) => s.shard)).toEqual([
      [0, 2],
      [1, 2],
    ]);
    expect(emu.gatewaySessions().map((s) => s.guildIds.length)).toEqual([0, 1].map((i) => +(i === owner)));
    expect(clients.map((c) => c.guilds.cache.has(emu.guildId))).toEqual([owner === 0, owner === 1]);

    const seen = clients.map(received);
    const alice = emu.createUser({ username: 'alice' });
    emu.postMessage(emu.channelId, alice.id, 'one');
    emu.postMessage(emu.channelId, alice.id, 'two');
    await emu.waitFor(() => seen[owner]!.length === 2);
    expect(seen[owner]).toEqual(['one', 'two']);
    expect(seen[1 - owner]).toEqual([]);
  });

  it('closes an IDENTIFY with an impossible shard with 4010', async () => {
    const { emu } = await world();
    const info = (await (
      await fetch(`${emu.apiUrl}/v10/gateway/bot`, { headers: { Authorization: `Bot ${emu.botToken}` } })
    ).json()) as { url: string; shards: number };
    expect(info.shards).toBe(1);
    const ws = new WebSocket(`${info.url}?v=10&encoding=json`);
    const code = await new Promise<number>((resolve) => {
      ws.once('message', () =>
        ws.send(JSON.stringify({ op: 2, d: { token: emu.botToken, intents: 513, shard: [2, 2] } })),
      );
      ws.once('close', (c) => resolve(c));
    });
    expect(code).toBe(4010);
  });

  it('gives every session of a shard its events, or only the one a test delivers to', async () => {
    const { emu, login } = await world();
    const first = await login();
    const second = await login();
    const sessions = emu.gatewaySessions();
    expect(sessions.map((s) => [s.shard, s.connected])).toEqual([
      [[0, 1], true],
      [[0, 1], true],
    ]);
    const seen = [received(first), received(second)];
    const alice = emu.createUser({ username: 'alice' });
    emu.postMessage(emu.channelId, alice.id, 'to both');
    emu.postMessage(emu.channelId, alice.id, 'to the second', { via: sessions[1]!.id });
    emu.postMessage(emu.channelId, alice.id, 'to the first', { via: sessions[0]!.id });
    await emu.waitFor(() => seen[0]!.length === 2 && seen[1]!.length === 2);
    expect(seen).toEqual([
      ['to both', 'to the first'],
      ['to both', 'to the second'],
    ]);

    const got = once(second, Events.InteractionCreate);
    emu.runCommand({ channelId: emu.channelId, userId: alice.id, name: 'ping', via: sessions[1]!.id });
    const [interaction] = await got;
    expect(interaction.isChatInputCommand() && interaction.commandName).toBe('ping');
    expect(() => emu.postMessage(emu.channelId, alice.id, 'x', { via: 'nosuchsession' })).toThrow(
      /no gateway session/,
    );
  });
});
