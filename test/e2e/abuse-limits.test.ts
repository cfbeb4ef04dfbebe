// Abuse limits end to end: the message rate and the queue bound per thread (each with a notice that is itself
// rate-limited), the model allowlist and the style length of /alternatives, and its cooldown under parallel requests.
import { afterEach, describe, expect, it } from 'vitest';
import type { MessageView } from '../emulators/discord/types.ts';
import { createWorld, startThread, type World, waitForBallot } from './harness.ts';

let world: World | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

function botMessages(w: World, threadId: string, prefix: string): MessageView[] {
  return w.discord
    .messages(threadId)
    .filter((m) => m.authorId === w.discord.botUserId && !m.ephemeral && m.content.startsWith(prefix));
}

const answered = (w: World, threadId: string, said: string) =>
  w.discord
    .messages(threadId)
    .some((m) => m.authorId === w.discord.botUserId && m.content.includes(`"${said}`));

const settle = () => new Promise((resolve) => setTimeout(resolve, 1500));

describe('abuse limits', () => {
  it('refuses a person posting faster than RATE_LIMIT_MESSAGES, with one notice, and answers everyone else', async () => {
    world = await createWorld();
    const w = world;
    await w.startBot({ RATE_LIMIT_MESSAGES: '3', RATE_LIMIT_SECONDS: '60' });
    const alice = w.discord.createUser({ username: 'alice' });
    const bob = w.discord.createUser({ username: 'bob' });
    const threadId = await startThread(w, alice.id, 'hello'); // the first of alice's three
    const posted = ['two', 'three', 'four', 'five', 'six'].map((text) =>
      w.discord.postMessage(threadId, alice.id, text),
    );
    w.discord.postMessage(threadId, bob.id, 'bob too');
    await w.discord.waitFor(() => answered(w, threadId, 'bob: bob too') || undefined, { timeoutMs: 20_000 });
    await settle();
    const notices = botMessages(w, threadId, '🐢');
    expect(notices).toHaveLength(1);
    expect(notices[0]!.referenceId).toBe(posted[2]!.id);
    expect(notices[0]!.content).toMatch(
      /^🐢 <@\d+>, you are posting faster than this thread allows; this message was not queued\. You can post again in \d+ s\.$/,
    );
    expect(notices[0]!.pinged.users).toEqual([]);
    expect(['two', 'three'].every((t) => answered(w, threadId, `alice: ${t}`))).toBe(true);
    expect(['four', 'five', 'six'].some((t) => answered(w, threadId, `alice: ${t}`))).toBe(false);
  });

  it('bounds the queue of a thread at MAX_QUEUED_MESSAGES, with one notice', async () => {
    world = await createWorld();
    const w = world;
    await w.startBot({ MAX_QUEUED_MESSAGES: '2' });
    const alice = w.discord.createUser({ username: 'alice' });
    const threadId = await startThread(w, alice.id, 'hello');
    w.openai.setLatency({ firstTokenMs: 1500 });
    const posted = ['one', 'two', 'three', 'four'].map((text) =>
      w.discord.postMessage(threadId, alice.id, text),
    );
    const notice = await w.discord.waitFor(() => botMessages(w, threadId, '📥').at(0));
    expect(notice.referenceId).toBe(posted[2]!.id);
    expect(notice.content).toContain(
      'too many messages are already waiting in this thread; this one was not queued',
    );
    await w.discord.waitFor(() => answered(w, threadId, 'alice: two') || undefined, { timeoutMs: 20_000 });
    await settle();
    expect(botMessages(w, threadId, '📥')).toHaveLength(1);
    expect(answered(w, threadId, 'alice: three') || answered(w, threadId, 'alice: four')).toBe(false);
  });

  it('limits models to ALLOWED_MODELS for non-moderators, and styles in length', async () => {
    world = await createWorld();
    const w = world;
    await w.startBot({ ALTERNATIVES_COOLDOWN_SECONDS: '0' });
    const alice = w.discord.createUser({ username: 'alice' });
    const mod = w.discord.createUser({ username: 'mod', manageThreads: true });
    const threadId = await startThread(w, alice.id, 'hello');
    const run = async (userId: string, options: Record<string, string | number>) =>
      (
        await w.discord
          .runCommand({ channelId: threadId, userId, name: 'alternatives', options })
          .response({ timeoutMs: 30_000 })
      ).content;
    expect(await run(alice.id, { models: 'gpt-4.1, gpt-4.1-mini' })).toBe(
      '⚠️ Only moderators can use other models; allowed here: gpt-4.1-mini.',
    );
    expect(await run(alice.id, { styles: `${'x'.repeat(201)} | short` })).toBe(
      '⚠️ Each style can be at most 200 characters long.',
    );
    expect(botMessages(w, threadId, '🗳')).toHaveLength(0);
    expect(await run(mod.id, { models: 'gpt-4.1', prompt: 'compare' })).toMatch(
      /^Vote opened on 2 alternatives/,
    );
    await waitForBallot(w, threadId, (m) => m.content.startsWith('🗳'));
  });

  it('lets one of three parallel /alternatives of one person through the cooldown', async () => {
    world = await createWorld();
    const w = world;
    await w.startBot({ ALTERNATIVES_COOLDOWN_SECONDS: '3600' });
    const alice = w.discord.createUser({ username: 'alice' });
    const threads = [
      await startThread(w, alice.id, 'a'),
      await startThread(w, alice.id, 'b'),
      await startThread(w, alice.id, 'c'),
    ];
    const before = w.openai.requests.length;
    const responses = await Promise.all(
      threads.map((channelId) =>
        w.discord
          .runCommand({ channelId, userId: alice.id, name: 'alternatives', options: { count: 4 } })
          .response({ timeoutMs: 30_000 }),
      ),
    );
    const contents = responses.map((r) => r.content);
    expect(contents.filter((c) => c.startsWith('Vote opened'))).toHaveLength(1);
    expect(contents.filter((c) => /^⚠️ You can ask for alternatives again in \d+ s\.$/.test(c))).toHaveLength(
      2,
    );
    // Three new generations (alternative A is the reply already given) for the one that passed, none for the others.
    expect(w.openai.requests.slice(before).filter((r) => r.route === 'POST /v1/responses')).toHaveLength(3);
  });
});
