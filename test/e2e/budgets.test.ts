// Budgets end to end: the real bot process against the Discord and OpenAI emulators. Token counts come from the
// emulator, so the tests read what was spent with /usage and set the limits from it with /budget.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { MessageView } from '../emulators/discord/types.ts';
import { startRedis } from '../redis-server.ts';
import {
  buttonId,
  createWorld,
  startBotWithSession,
  startThread,
  startThreadVia,
  type World,
  waitForReplies,
} from './harness.ts';

let world: World | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

/** Manage Server (MANAGE_GUILD) */
const MANAGE_GUILD = 1n << 5n;

/** The bot's messages in a thread that start with `prefix` (its notices: ⛔ budget, 🐢 rate, 📥 queue). */
function botMessages(w: World, threadId: string, prefix: string): MessageView[] {
  return w.discord
    .messages(threadId)
    .filter((m) => m.authorId === w.discord.botUserId && !m.ephemeral && m.content.startsWith(prefix));
}

/** True once the bot answered the message whose text (as the model saw it) is `said`. */
const answered = (w: World, threadId: string, said: string) =>
  w.discord
    .messages(threadId)
    .some(
      (m) =>
        m.authorId === w.discord.botUserId && m.content.includes(`"${said}`) && !m.content.startsWith('⛔'),
    );

/** Tokens spent today by `of` (me / server), as /usage shows them. */
async function usedToday(w: World, channelId: string, userId: string, of: 'me' | 'server'): Promise<number> {
  const response = await w.discord
    .runCommand({ channelId, userId, name: 'usage', options: { of } })
    .response({ timeoutMs: 30_000 });
  const today = JSON.stringify(response.embeds).match(/Today \(UTC\)","value":"\*\*([\d,]+)\*\* tokens/);
  if (!today) throw new Error(`no usage in ${JSON.stringify(response.embeds)}`);
  return Number(today[1]!.replaceAll(',', ''));
}

async function setBudget(
  w: World,
  adminId: string,
  options: { scope: 'user' | 'server'; period: 'day' | 'month'; tokens: number },
) {
  const response = await w.discord
    .runCommand({
      channelId: w.discord.channelId,
      userId: adminId,
      name: 'budget',
      subcommand: 'set',
      options,
    })
    .response({ timeoutMs: 30_000 });
  expect(JSON.stringify(response.embeds)).toContain('Token budgets updated');
}

const nextUtcMidnight = () => {
  const now = new Date();
  return Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1);
};

/** Every reservation is dominated by this, so one fits a limit of "spent + 1,500" and two do not. */
const RESERVE = { BUDGET_RESERVE_OUTPUT_TOKENS: '1000' };

describe('budgets', () => {
  it('refuses a person over their budget with a notice and Retry, tells them ephemerally, and answers others', async () => {
    world = await createWorld();
    const w = world;
    // A first turn in a thread is estimated at 990 and a few tokens: it fits in 1,000. The next one adds what the
    // first one spent, and does not.
    await w.startBot({
      BUDGET_RESERVE_OUTPUT_TOKENS: '990',
      BUDGET_USER_DAILY_TOKENS: '1000',
      ALTERNATIVES_COOLDOWN_SECONDS: '0',
    });
    const alice = w.discord.createUser({ username: 'alice' });
    const bob = w.discord.createUser({ username: 'bob' });
    const threadId = await startThread(w, alice.id, 'first');
    const spent = await usedToday(w, threadId, alice.id, 'me');
    expect(spent).toBeGreaterThan(0);

    const refused = w.discord.postMessage(threadId, alice.id, 'second');
    const notice = await w.discord.waitFor(() => botMessages(w, threadId, '⛔').at(0));
    expect(notice.referenceId).toBe(refused.id);
    expect(notice.content).toContain(
      `<@${alice.id}>, this message was not answered: your daily token budget`,
    );
    expect(notice.content).toContain(`${(1000 - spent).toLocaleString('en-US')} of 1,000 tokens left`);
    expect(notice.content).toContain(`It resets <t:${nextUtcMidnight() / 1000}:f>`);
    expect(notice.pinged.users).toEqual([]);
    expect(buttonId(notice, 'Retry')).toBe(`retry:${threadId}:${refused.id}`);
    expect(answered(w, threadId, 'alice: second')).toBe(false);

    // Bob has a budget of his own (in a thread of his own: a thread's estimate includes its context).
    await startThread(w, bob.id, 'mine');

    // /alternatives is refused ephemerally before anything shows in the thread.
    const shown = () => w.discord.messages(threadId).filter((m) => !m.ephemeral).length;
    const before = shown();
    const alternatives = await w.discord
      .runCommand({
        channelId: threadId,
        userId: alice.id,
        name: 'alternatives',
        options: { prompt: 'fork' },
      })
      .response({ timeoutMs: 30_000 });
    expect(alternatives.ephemeral).toBe(true);
    expect(alternatives.content).toMatch(/^⚠️ Not started: your daily token budget is used up/);
    expect(shown()).toBe(before);

    // /usage: numbers and a PNG chart.
    const usage = await w.discord
      .runCommand({ channelId: threadId, userId: alice.id, name: 'usage' })
      .response({ timeoutMs: 30_000 });
    expect(usage.ephemeral).toBe(true);
    expect(JSON.stringify(usage.embeds)).toMatch(/gpt-4\.1-mini: [\d,]+ tokens · ≈ \$0\.\d{4}/);
    expect(usage.attachments.map((a) => a.filename)).toEqual(['usage.png']);
    const png = Buffer.from(await (await fetch(usage.attachments[0]!.url)).arrayBuffer());
    expect(png.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
  });

  it('refuses everyone once the server budget is spent; Manage Server raises it and Retry answers', async () => {
    world = await createWorld();
    const w = world;
    await w.startBot(RESERVE);
    const alice = w.discord.createUser({ username: 'alice' });
    const bob = w.discord.createUser({ username: 'bob' });
    const admin = w.discord.createUser({
      username: 'admin',
      roles: [w.discord.createRole({ name: 'admin', permissions: MANAGE_GUILD })],
    });
    const threadId = await startThread(w, alice.id, 'spend');
    const spent = await usedToday(w, threadId, admin.id, 'server');

    // Without Manage Server, /budget set is refused.
    const denied = await w.discord
      .runCommand({
        channelId: threadId,
        userId: bob.id,
        name: 'budget',
        subcommand: 'set',
        options: { scope: 'server', period: 'day', tokens: 1 },
      })
      .response({ timeoutMs: 30_000 });
    expect(denied.content).toMatch(/Only members with Manage Server/);

    await setBudget(w, admin.id, { scope: 'server', period: 'day', tokens: spent + 500 });
    const refused = w.discord.postMessage(threadId, bob.id, 'bob asks');
    const notice = await w.discord.waitFor(() => botMessages(w, threadId, '⛔').at(0));
    expect(notice.content).toContain("this server's daily token budget is used up");
    expect(notice.referenceId).toBe(refused.id);

    await setBudget(w, admin.id, { scope: 'server', period: 'day', tokens: 0 });
    await w.discord
      .clickButton({ messageId: notice.id, customId: buttonId(notice, 'Retry'), userId: bob.id })
      .response();
    await w.discord.waitFor(() => answered(w, threadId, 'bob: bob asks') || undefined, { timeoutMs: 15_000 });
  });

  it('lets one of three messages racing for a budget that holds one through', async () => {
    world = await createWorld();
    const w = world;
    await w.startBot(RESERVE);
    const alice = w.discord.createUser({ username: 'alice' });
    const admin = w.discord.createUser({
      username: 'admin',
      roles: [w.discord.createRole({ name: 'admin', permissions: MANAGE_GUILD })],
    });
    const threads = [
      await startThread(w, alice.id, 'a'),
      await startThread(w, alice.id, 'b'),
      await startThread(w, alice.id, 'c'),
    ];
    const spent = await usedToday(w, threads[0]!, alice.id, 'me');
    await setBudget(w, admin.id, { scope: 'user', period: 'day', tokens: spent + 1500 });
    // Slow replies: every message reserves while the others' generations still run.
    w.openai.setLatency({ firstTokenMs: 1500 });
    for (const threadId of threads) w.discord.postMessage(threadId, alice.id, 'race');
    await w.discord.waitFor(
      () =>
        threads.filter((t) => answered(w, t, 'alice: race')).length +
          threads.filter((t) => botMessages(w, t, '⛔').length > 0).length ===
          3 || undefined,
      { timeoutMs: 20_000 },
    );
    expect(threads.filter((t) => answered(w, t, 'alice: race'))).toHaveLength(1);
    expect(threads.filter((t) => botMessages(w, t, '⛔').length > 0)).toHaveLength(2);
  });
});

const redis = await startRedis();
afterAll(() => redis?.stop());

describe.skipIf(!redis)('budgets across two processes on one Redis', () => {
  it('lets one of two messages handled by different processes through a budget that holds one', async () => {
    world = await createWorld();
    const w = world;
    const env = { ...RESERVE, STORE_URL: redis!.url };
    const first = await startBotWithSession(w, env);
    const second = await startBotWithSession(w, env);
    const alice = w.discord.createUser({ username: 'alice' });
    const admin = w.discord.createUser({
      username: 'admin',
      roles: [w.discord.createRole({ name: 'admin', permissions: MANAGE_GUILD })],
    });
    const threads = [
      await startThreadVia(w, alice.id, 'one', first.session),
      await startThreadVia(w, alice.id, 'two', second.session),
    ];
    await waitForReplies(w, threads[1]!, 1);
    const spent = await usedToday(w, threads[0]!, alice.id, 'me');
    await setBudget(w, admin.id, { scope: 'user', period: 'day', tokens: spent + 1500 });
    w.openai.setLatency({ firstTokenMs: 1500 });
    w.discord.postMessage(threads[0]!, alice.id, 'race', { via: first.session });
    w.discord.postMessage(threads[1]!, alice.id, 'race', { via: second.session });
    await w.discord.waitFor(
      () =>
        threads.filter((t) => answered(w, t, 'alice: race')).length +
          threads.filter((t) => botMessages(w, t, '⛔').length > 0).length ===
          2 || undefined,
      { timeoutMs: 20_000 },
    );
    expect(threads.filter((t) => answered(w, t, 'alice: race'))).toHaveLength(1);
    // Each process answered or refused its own thread's message.
    expect(
      first.bot.logs.some((l) => l.msg === 'message refused: over budget') !==
        second.bot.logs.some((l) => l.msg === 'message refused: over budget'),
    ).toBe(true);
  });
});
