import { ChannelType, Events, GatewayIntentBits } from 'discord.js';
import { afterEach, describe, expect, it } from 'vitest';
import { once, start, stopAll } from './harness.ts';

afterEach(stopAll);

describe('discord emulator: gateway', () => {
  it('logs the client in and fills the guild and channel caches', async () => {
    const { emu, client } = await start();
    await emu.clientConnected();
    expect(client.user?.id).toBe(emu.botUserId);
    expect(client.application?.id).toBe(emu.applicationId);
    const guild = client.guilds.cache.get(emu.guildId);
    expect(guild?.available).toBe(true);
    expect(guild?.roles.everyone.id).toBe(emu.guildId);
    expect(guild?.members.me?.id).toBe(emu.botUserId);
    const general = client.channels.cache.get(emu.channelId);
    expect(general?.type).toBe(ChannelType.GuildText);
    expect(general && 'name' in general ? general.name : undefined).toBe('general');
    expect(emu.requests.map((r) => r.route)).toContain('GET /gateway/bot');
  });

  it('delivers messageCreate with content under the MessageContent intent', async () => {
    const { emu, client } = await start();
    const alice = emu.createUser({ username: 'alice' });
    const got = once(client, Events.MessageCreate);
    emu.postMessage(emu.channelId, alice.id, 'hello bot');
    const [message] = await got;
    expect(message.content).toBe('hello bot');
    expect(message.author.id).toBe(alice.id);
    expect(message.author.bot).toBe(false);
    expect(message.channelId).toBe(emu.channelId);
  });

  it('blanks content without the MessageContent intent, except when the bot is mentioned', async () => {
    const { emu, client } = await start({
      intents: [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessages],
    });
    const alice = emu.createUser({ username: 'alice' });
    const first = once(client, Events.MessageCreate);
    emu.postMessage(emu.channelId, alice.id, 'secret words', {
      attachments: [{ filename: 'a.txt', content: 'data' }],
    });
    const [plain] = await first;
    expect(plain.content).toBe('');
    expect(plain.attachments.size).toBe(0);
    const second = once(client, Events.MessageCreate);
    emu.postMessage(emu.channelId, alice.id, `<@${emu.botUserId}> hi`);
    const [mentioned] = await second;
    expect(mentioned.content).toBe(`<@${emu.botUserId}> hi`);
    expect(mentioned.mentions.users.has(emu.botUserId)).toBe(true);
  });

  it('serves attachments of posted messages over HTTP', async () => {
    const { emu, client } = await start();
    const alice = emu.createUser({ username: 'alice' });
    const got = once(client, Events.MessageCreate);
    emu.postMessage(emu.channelId, alice.id, 'see file', {
      attachments: [{ filename: 'notes.txt', content: 'file body', contentType: 'text/plain' }],
    });
    const [message] = await got;
    const attachment = message.attachments.first();
    expect(attachment?.name).toBe('notes.txt');
    const res = await fetch(attachment?.url ?? '');
    expect(await res.text()).toBe('file body');
  });

  it('resumes after a dropped connection and replays missed events', async () => {
    const { emu, client } = await start();
    const alice = emu.createUser({ username: 'alice' });
    const resumed = once(client, Events.ShardResume);
    const missed = once(client, Events.MessageCreate, (m) => m.content === 'while you were away');
    emu.dropConnection();
    emu.postMessage(emu.channelId, alice.id, 'while you were away');
    await resumed;
    await missed;
    const after = once(client, Events.MessageCreate, (m) => m.content === 'after resume');
    emu.postMessage(emu.channelId, alice.id, 'after resume');
    await after;
  });

  it('dispatches THREAD_CREATE and THREAD_UPDATE to the client', async () => {
    const { emu, client } = await start();
    const alice = emu.createUser({ username: 'alice' });
    const created = once(client, Events.ThreadCreate);
    const threadId = emu.createThread({ parentId: emu.channelId, name: 'topic', ownerId: alice.id });
    const [thread, newly] = await created;
    expect(thread.id).toBe(threadId);
    expect(newly).toBe(true);
    expect(thread.parentId).toBe(emu.channelId);
    const updated = once(client, Events.ThreadUpdate);
    emu.archiveThread(threadId, { locked: true });
    const [, after] = await updated;
    expect(after.archived).toBe(true);
    expect(after.locked).toBe(true);
    expect(emu.channel(threadId)).toMatchObject({ archived: true, locked: true, ownerId: alice.id });
  });
});
