// Redis goes away in the middle of a thread and comes back: the bot tells people it is temporarily unavailable
// (never silence), and carries on by itself once Redis is back, without a restart of its own.
import { createClient } from '@keyv/redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replyFor } from '../emulators/openai/index.ts';
import { startRedis } from '../redis-server.ts';
import {
  type BotProcess,
  command,
  conversationHolding,
  createWorld,
  replies,
  startThread,
  type World,
  waitForReplies,
} from './harness.ts';

const redis = await startRedis();
const MODEL = 'gpt-4.1-mini';
const UNAVAILABLE = /temporarily unavailable/;

type Said = { role: 'user' | 'assistant'; text: string };
const user = (text: string): Said => ({ role: 'user', text });
const assistant = (text: string): Said => ({ role: 'assistant', text });

/** A connection of the test's own, for looking at (and saving, restoring) what the server holds. */
async function connect(url: string) {
  const client = createClient({ url });
  await client.connect();
  return client;
}

/**
 * Everything the server holds (the bot's records are plain strings). test/redis-server.ts runs Redis without
 * persistence; a production Redis keeps its data over a restart (RDB/AOF), so the test carries it over itself.
 */
interface Snapshot {
  at: number;
  keys: Map<string, { value: string; expiresAt: number | undefined }>;
}

async function snapshot(url: string): Promise<Snapshot> {
  const client = await connect(url);
  try {
    const at = Date.now();
    const keys: Snapshot['keys'] = new Map();
    for (const key of await client.keys('*')) {
      const type = await client.type(key);
      if (type !== 'string') throw new Error(`snapshot: ${key} is a ${type}`);
      const ttlMs = await client.pTTL(key);
      keys.set(key, { value: (await client.get(key)) ?? '', expiresAt: ttlMs > 0 ? at + ttlMs : undefined });
    }
    return { at, keys };
  } finally {
    await client.close();
  }
}

/** Puts a snapshot back; keys with an expiry (locks) keep their original deadline, as Redis itself does. */
async function restore(url: string, saved: Snapshot): Promise<void> {
  const client = await connect(url);
  try {
    for (const [key, { value, expiresAt }] of saved.keys) {
      if (expiresAt !== undefined && expiresAt <= Date.now()) continue;
      await client.set(key, value);
      if (expiresAt !== undefined) await client.pExpireAt(key, expiresAt);
    }
  } finally {
    await client.close();
  }
}

/** Waits until the bot has reconnected both of its connections (records and locks). */
async function botReconnected(url: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while ((await otherClients(url)) < 2) {
    if (Date.now() > deadline) throw new Error('the bot did not reconnect to Redis');
    await new Promise((resolve) => setTimeout(resolve, 50)); // poll
  }
}

/** How many connections other than the asking one the server has (the bot keeps one for records, one for locks). */
async function otherClients(url: string): Promise<number> {
  const client = await connect(url);
  try {
    const list = await client.clientList();
    return list.length - 1;
  } finally {
    await client.close();
  }
}

describe.skipIf(!redis)('Redis restarts during a thread', () => {
  let world: World;
  let bot: BotProcess;
  let alice: { id: string };

  beforeAll(async () => {
    world = await createWorld();
    bot = await world.startBot({ STORE_URL: redis!.url, LOCK_TTL_MS: '3000' });
    alice = world.discord.createUser({ username: 'alice' });
  });
  afterAll(async () => {
    await world?.close();
    await redis?.stop();
  });

  it('says it is temporarily unavailable while Redis is down, and carries on by itself when it is back', async () => {
    const threadId = await startThread(world, alice.id, 'remember the number 42');
    const history = [user('alice: remember the number 42'), assistant(replies(world, threadId)[0]!.text)];
    world.discord.postMessage(threadId, alice.id, 'and 7');
    history.push(user('alice: and 7'), assistant((await waitForReplies(world, threadId, 2))[1]!.text));

    const saved = await snapshot(redis!.url);
    await redis!.stop();

    // A message: a reply says the bot cannot answer now (not silence), and nothing half-done is left.
    const during = world.discord.postMessage(threadId, alice.id, 'are you there?');
    const notice = await world.discord.waitFor(() =>
      world.discord.messages(threadId).find((m) => m.referenceId === during.id),
    );
    expect(notice.authorId).toBe(world.discord.botUserId);
    expect(notice.content).toMatch(UNAVAILABLE);
    // A command: the same, to the person who ran it.
    expect(await command(world, { channelId: threadId, userId: alice.id, name: 'settings' })).toMatch(
      UNAVAILABLE,
    );
    expect(bot.logs.some((l) => UNAVAILABLE.test(JSON.stringify(l)))).toBe(true);

    await redis!.restart();
    await restore(redis!.url, saved);
    // The bot reconnects by itself (its records connection and its locks connection).
    await botReconnected(redis!.url);

    // The person asks again; the thread continues from its whole history.
    world.discord.postMessage(threadId, alice.id, 'what numbers?');
    const answer = await world.discord.waitFor(() =>
      replies(world, threadId).find((r) => !r.streaming && r.text.includes('"alice: what numbers?')),
    );
    history.push(user('alice: what numbers?'));
    expect(answer.text).toBe(replyFor({ model: MODEL, messages: history }));
    history.push(assistant(answer.text));
    expect(conversationHolding(world, 'remember the number 42')).toEqual(history.map((m) => m.text));
    expect(await command(world, { channelId: threadId, userId: alice.id, name: 'settings' })).not.toMatch(
      UNAVAILABLE,
    );
    // Still the first process: it never restarted.
    expect(bot.logs.filter((l) => l.msg === 'threadfork is running')).toHaveLength(1);
    expect(bot.logs.filter((l) => l.level >= 60)).toEqual([]);
  }, 90_000);

  it('a reply running when Redis goes down says so, and the message is answered again once it is back', async () => {
    const threadId = await startThread(world, alice.id, 'count to three');
    const history = [user('alice: count to three'), assistant(replies(world, threadId)[0]!.text)];
    world.openai.setLatency({ firstTokenMs: 1000 });
    const started = world.openai.requests.length;
    world.discord.postMessage(threadId, alice.id, 'one');
    await world.discord.waitFor(() =>
      world.openai.requests.slice(started).some((r) => r.route === 'POST /v1/responses'),
    );
    const saved = await snapshot(redis!.url);
    await redis!.stop();
    // The model answers, but the reply cannot be kept: it says so instead of streaming forever.
    const failed = await world.discord.waitFor(() =>
      replies(world, threadId).find((r) => !r.streaming && UNAVAILABLE.test(r.text)),
    );
    expect(failed.text).toContain('to "alice: one"');
    world.openai.setLatency({ firstTokenMs: 0 });

    await redis!.restart();
    await restore(redis!.url, saved);
    await botReconnected(redis!.url);
    // The bot finds the waiting message by itself and answers it, once, from the history it kept.
    const answer = await world.discord.waitFor(
      () =>
        replies(world, threadId).find(
          (r) => !r.streaming && r.text.includes('"alice: one') && !UNAVAILABLE.test(r.text),
        ),
      { timeoutMs: 20_000 },
    );
    history.push(user('alice: one'));
    expect(answer.text).toBe(replyFor({ model: MODEL, messages: history }));
    history.push(assistant(answer.text));
    // The conversation holds the message once: what the interrupted turn left there was cleaned up.
    expect(conversationHolding(world, 'count to three')).toEqual(history.map((m) => m.text));
    world.discord.postMessage(threadId, alice.id, 'two');
    const next = await world.discord.waitFor(() =>
      replies(world, threadId).find((r) => !r.streaming && r.text.includes('"alice: two')),
    );
    history.push(user('alice: two'));
    expect(next.text).toBe(replyFor({ model: MODEL, messages: history }));
    expect(bot.logs.filter((l) => l.msg === 'threadfork is running')).toHaveLength(1);
  }, 90_000);
});
