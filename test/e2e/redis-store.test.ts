// Chat and /alternatives with STORE_URL=redis://...: a representative subset of the chat and alternatives scenarios
// against a bot whose every record (sessions, branches, items, votes) and thread lock live in Redis.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createClient } from '@keyv/redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replyFor } from '../emulators/openai/index.ts';
import { startRedis } from '../redis-server.ts';
import {
  type BotProcess,
  buttonId,
  buttonIds,
  command,
  conversationHolding,
  createWorld,
  lockTroubleAndErrors,
  overlappingTurns,
  replies,
  startThread,
  type World,
  waitForBallot,
  waitForReplies,
} from './harness.ts';

const redis = await startRedis();
const MODEL = 'gpt-4.1-mini';
type Said = { role: 'user' | 'assistant'; text: string };
const user = (text: string): Said => ({ role: 'user', text });
const assistant = (text: string): Said => ({ role: 'assistant', text });

describe.skipIf(!redis)('chat and alternatives on the Redis store', () => {
  let world: World;
  let bot: BotProcess;
  let alice: { id: string };
  let bob: { id: string };
  let carol: { id: string };
  let mod: { id: string };

  beforeAll(async () => {
    world = await createWorld();
    bot = await world.startBot({ STORE_URL: redis!.url, ALTERNATIVES_COOLDOWN_SECONDS: '0' });
    alice = world.discord.createUser({ username: 'alice' });
    bob = world.discord.createUser({ username: 'bob' });
    carol = world.discord.createUser({ username: 'carol' });
    mod = world.discord.createUser({ username: 'mod', manageThreads: true });
  });
  afterAll(async () => {
    await world?.close();
    await redis?.stop();
  });

  it('answers each message from the whole history, keeping the thread in Redis', async () => {
    const threadId = await startThread(world, alice.id, 'plan a trip to Lisbon');
    const history = [user('alice: plan a trip to Lisbon')];
    history.push(assistant(replies(world, threadId)[0]!.text));
    expect(history[1]!.text).toBe(replyFor({ model: MODEL, messages: history.slice(0, 1) }));

    for (const [who, text] of [
      [bob, 'what about food?'],
      [alice, 'and museums'],
    ] as const) {
      const count = history.length / 2 + 1;
      world.discord.postMessage(threadId, who.id, text);
      const reply = (await waitForReplies(world, threadId, count))[count - 1]!;
      history.push(user(`${who === bob ? 'bob' : 'alice'}: ${text}`));
      expect(reply.text).toBe(replyFor({ model: MODEL, messages: history }));
      history.push(assistant(reply.text));
    }
    expect(conversationHolding(world, 'plan a trip to Lisbon')).toEqual(history.map((m) => m.text));

    // The records are in Redis, and no SQLite file was made.
    const client = createClient({ url: redis!.url });
    await client.connect();
    try {
      const keys = await client.keys('threadfork*');
      expect(keys.some((k) => k.includes(`thread:${threadId}`))).toBe(true);
      expect(keys.some((k) => k.includes(`items:${threadId}:b1`))).toBe(true);
    } finally {
      await client.close();
    }
    expect(existsSync(join(world.dir, 'threadfork.sqlite'))).toBe(false);
  });

  it('answers five messages posted at once, in order, one turn at a time', async () => {
    world.openai.setLatency({ firstTokenMs: 100 });
    try {
      const threadId = await startThread(world, alice.id, 'count with me');
      for (const n of [1, 2, 3, 4, 5]) world.discord.postMessage(threadId, alice.id, `number ${n}`);
      const found = await waitForReplies(world, threadId, 6);
      expect(found.slice(1).map((r) => r.text.match(/to "alice: (number \d)"/)?.[1])).toEqual([
        'number 1',
        'number 2',
        'number 3',
        'number 4',
        'number 5',
      ]);
    } finally {
      world.openai.setLatency({ firstTokenMs: 0 });
    }
    expect(world.openai.requests.filter((r) => r.status === 400)).toEqual([]);
    expect(overlappingTurns(world)).toEqual([]);
  });

  it('runs /alternatives, counts the votes, and continues on the winner once the quorum is reached', async () => {
    const threadId = await startThread(world, alice.id, 'plan a trip to Porto');
    await command(world, { channelId: threadId, userId: mod.id, name: 'settings', options: { quorum: 2 } });
    const reply = await command(world, {
      channelId: threadId,
      userId: alice.id,
      name: 'alternatives',
      options: { count: 3, prompt: 'where should we eat?' },
    });
    expect(reply).toMatch(/Vote opened on 3 alternatives/);
    const ballot = await waitForBallot(world, threadId);
    const shown = world.discord
      .messages(threadId)
      .filter((m) => m.authorId === world.discord.botUserId && /^\*\*[A-E]\*\* · /.test(m.content));
    expect(shown.map((m) => m.content.slice(0, 5))).toEqual(['**A**', '**B**', '**C**']);
    const winner = shown[1]!.content.split('\n').slice(1, -1).join('\n');

    const vote = (userId: string, letter: string) =>
      world.discord
        .clickButton({ messageId: ballot.id, customId: buttonId(ballot, letter), userId })
        .response();
    expect((await vote(alice.id, 'A')).content).toMatch(/Your vote: \*\*A\*\*/);
    expect((await vote(alice.id, 'B')).content).toMatch(/moved to: \*\*B\*\*/);
    await vote(bob.id, 'C');
    world.discord.postMessage(threadId, carol.id, 'so what is the plan?');
    expect((await vote(carol.id, 'B')).content).toMatch(/B\*\* wins/);
    const closed = await waitForBallot(world, threadId, (m) => m.content.startsWith('✅'));
    expect(closed.content).toMatch(/B wins\*\* with 2 of 3 votes/);
    expect(buttonIds(closed).every((b) => b.disabled)).toBe(true);

    // The message that waited for the vote is answered on the winner.
    await world.discord.waitFor(() => {
      const last = replies(world, threadId).at(-1);
      return last && !last.streaming && last.text.includes('carol: so what is the plan?');
    });
    const texts = conversationHolding(world, 'so what is the plan?');
    expect(texts).toContain(winner);
    expect(texts).toContain('alice: where should we eat?');
    expect(bot.logs.filter((l) => l.msg === 'vote closed')).toHaveLength(1);
  });

  it('closes a vote at its deadline', async () => {
    const threadId = await startThread(world, alice.id, 'slow vote');
    await command(world, {
      channelId: threadId,
      userId: mod.id,
      name: 'settings',
      options: { vote_seconds: 5 },
    });
    await command(world, {
      channelId: threadId,
      userId: alice.id,
      name: 'alternatives',
      options: { count: 2, prompt: 'go' },
    });
    const closed = await waitForBallot(world, threadId, (m) => m.content.startsWith('✅'), 15_000);
    expect(closed.content).toMatch(/A wins.*time ran out/);
    expect(lockTroubleAndErrors(bot)).toEqual([]);
  });
});
