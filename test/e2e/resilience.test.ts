import { afterEach, describe, expect, it } from 'vitest';
import { replyFor } from '../emulators/openai/index.ts';
import {
  assistant,
  buttonId,
  command,
  conversationHolding,
  createWorld,
  isStreaming,
  MODEL,
  replies,
  replyTo,
  startThread,
  user,
  type World,
  waitForReplies,
} from './harness.ts';

let world: World | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

async function setUp() {
  world = await createWorld();
  const bot = await world.startBot();
  const alice = world.discord.createUser({ username: 'alice' });
  return { world, bot, alice };
}

describe('restarts', () => {
  it('continues the same conversation after a restart of the bot', async () => {
    const { world: w, bot, alice } = await setUp();
    const threadId = await startThread(w, alice.id, 'remember the number 42');
    const first = replies(w, threadId)[0]!.text;
    await bot.stop();
    await w.startBot();
    w.discord.postMessage(threadId, alice.id, 'what number?');
    const second = await replyTo(w, threadId, 'alice: what number?');
    expect(second.text).toBe(
      replyFor({
        model: MODEL,
        messages: [user('alice: remember the number 42'), assistant(first), user('alice: what number?')],
      }),
    );
    expect(conversationHolding(w, 'remember the number 42')).toEqual([
      'alice: remember the number 42',
      first,
      'alice: what number?',
      second.text,
    ]);
  }, 90_000);

  it('answers again a message whose turn was running when the process died', async () => {
    const { world: w, bot, alice } = await setUp();
    const threadId = await startThread(w, alice.id, 'hello');
    const first = replies(w, threadId)[0]!.text;
    w.openai.setLatency({ firstTokenMs: 60_000 });
    const started = w.openai.requests.length;
    w.discord.postMessage(threadId, alice.id, 'are you there?');
    await w.discord.waitFor(() =>
      w.openai.requests.slice(started).some((r) => r.route === 'POST /v1/responses'),
    );
    await bot.kill();
    w.openai.setLatency({ firstTokenMs: 0 });
    await w.startBot();
    const answer = await replyTo(w, threadId, 'alice: are you there?');
    // Answered from the history the bot recorded, and the conversation holds the message once.
    expect(answer.text).toBe(
      replyFor({
        model: MODEL,
        messages: [user('alice: hello'), assistant(first), user('alice: are you there?')],
      }),
    );
    expect(conversationHolding(w, 'hello')).toEqual([
      'alice: hello',
      first,
      'alice: are you there?',
      answer.text,
    ]);
  }, 90_000);

  it('tells a thread made under another backend why it cannot continue, without crashing', async () => {
    const { world: w, bot, alice } = await setUp();
    const threadId = await startThread(w, alice.id, 'made with conversations');
    await bot.stop();
    const chatBot = await w.startBot({ BACKEND: 'chat' });
    w.discord.postMessage(threadId, alice.id, 'still there?');
    const notice = await w.discord.waitFor(() =>
      w.discord.messages(threadId).find((m) => m.content.includes('conversations backend')),
    );
    expect(notice.content).toMatch(/started with the conversations backend, but the bot now runs chat/);
    expect(chatBot.logs.filter((l) => l.level >= 60)).toEqual([]);
  });
});

describe('OpenAI failures', () => {
  it('retries a 429 and answers normally', async () => {
    const { world: w, alice } = await setUp();
    const threadId = await startThread(w, alice.id, 'first');
    w.openai.failNext({ route: 'POST /v1/responses', status: 429, retryAfterSeconds: 0 });
    w.discord.postMessage(threadId, alice.id, 'second');
    const reply = await replyTo(w, threadId, 'alice: second');
    expect(reply.text).not.toMatch(/⚠️/);
    expect(w.openai.requests.filter((r) => r.status === 429)).toHaveLength(1);
  });

  it('after three 500s says so with a Retry button, which then answers', async () => {
    const { world: w, alice } = await setUp();
    const threadId = await startThread(w, alice.id, 'first');
    w.openai.failNext({ route: 'POST /v1/responses', status: 500, times: 3 });
    w.discord.postMessage(threadId, alice.id, 'second');
    const failed = await w.discord.waitFor(() => replies(w, threadId).find((r) => r.text.includes('⚠️')));
    expect(failed.text).toMatch(/OpenAI is not answering right now/);
    const withRetry = failed.messages[0]!;
    w.discord.clickButton({
      messageId: withRetry.id,
      customId: buttonId(withRetry, 'Retry'),
      userId: alice.id,
    });
    const reply = await replyTo(w, threadId, 'alice: second');
    expect(reply.text).toMatch(/saw 3 msgs/);
    // The thread goes on from a clean history: the failed attempt left nothing behind.
    w.discord.postMessage(threadId, alice.id, 'third');
    expect((await replyTo(w, threadId, 'alice: third')).text).toMatch(/saw 5 msgs/);
  });

  it('says clearly when the API key is refused, and the thread stays usable', async () => {
    const { world: w, alice } = await setUp();
    const threadId = await startThread(w, alice.id, 'first');
    w.openai.failNext({
      route: 'POST /v1/responses',
      status: 401,
      code: 'invalid_api_key',
      message: 'Incorrect API key provided',
    });
    w.discord.postMessage(threadId, alice.id, 'second');
    const failed = await w.discord.waitFor(() => replies(w, threadId).find((r) => r.text.includes('⚠️')));
    expect(failed.text).toMatch(/OpenAI refused the bot's API key/);
    expect(failed.text).not.toContain(w.env.OPENAI_API_KEY);
    w.discord.postMessage(threadId, alice.id, 'third');
    expect((await replyTo(w, threadId, 'alice: third')).text).toMatch(/saw 3 msgs/);
  });

  it('names a missing model, and a moderator can switch to another', async () => {
    const { world: w, alice } = await setUp();
    const mod = w.discord.createUser({ username: 'mod', manageThreads: true });
    const threadId = await startThread(w, alice.id, 'first');
    expect(
      await command(w, {
        channelId: threadId,
        userId: alice.id,
        name: 'settings',
        options: { model: 'gpt-nope' },
      }),
    ).toMatch(/Only moderators/);
    await command(w, {
      channelId: threadId,
      userId: mod.id,
      name: 'settings',
      options: { model: 'gpt-nope' },
    });
    w.discord.postMessage(threadId, alice.id, 'second');
    const failed = await w.discord.waitFor(() => replies(w, threadId).find((r) => r.text.includes('⚠️')));
    expect(failed.text).toMatch(/The model `gpt-nope` does not exist/);
    const shown = await command(w, {
      channelId: threadId,
      userId: mod.id,
      name: 'settings',
      options: { model: 'gpt-4.1' },
    });
    expect(shown).toMatch(/gpt-4\.1/);
    w.discord.postMessage(threadId, alice.id, 'third');
    expect((await replyTo(w, threadId, 'alice: third')).text).toMatch(/^\[gpt-4\.1\]/);
  });
});

describe('Discord failures', () => {
  it('reopens a thread archived during a reply, and answers', async () => {
    const { world: w, alice } = await setUp();
    const threadId = await startThread(w, alice.id, 'first');
    w.openai.setLatency({ firstTokenMs: 500 });
    const started = w.openai.requests.length;
    w.discord.postMessage(threadId, alice.id, 'second');
    await w.discord.waitFor(() =>
      w.openai.requests.slice(started).some((r) => r.route === 'POST /v1/responses'),
    );
    w.discord.archiveThread(threadId);
    await replyTo(w, threadId, 'alice: second');
    expect(w.discord.channel(threadId)?.archived).toBe(false);
  });

  it('logs a locked thread it cannot answer in with the thread id, and keeps running', async () => {
    const { world: w, bot, alice } = await setUp();
    const threadId = await startThread(w, alice.id, 'first');
    w.openai.setLatency({ firstTokenMs: 500 });
    const started = w.openai.requests.length;
    w.discord.postMessage(threadId, alice.id, 'second');
    await w.discord.waitFor(() =>
      w.openai.requests.slice(started).some((r) => r.route === 'POST /v1/responses'),
    );
    w.discord.archiveThread(threadId, { locked: true });
    const logged = await bot.waitForLog((l) => l.threadId === threadId && l.level >= 50);
    expect(logged.msg).toMatch(/cannot show the reply/);
    w.openai.setLatency({ firstTokenMs: 0 });
    const other = await startThread(w, alice.id, 'another thread');
    expect(replies(w, other)).toHaveLength(1);
    expect(w.discord.messages(threadId).some(isStreaming)).toBe(false);
  });

  it('ignores bot messages, its own included', async () => {
    const { world: w, alice } = await setUp();
    const threadId = await startThread(w, alice.id, 'first');
    const robot = w.discord.createUser({ username: 'robot', bot: true });
    w.discord.postMessage(threadId, robot.id, 'beep');
    w.discord.postMessage(threadId, alice.id, 'human here');
    await waitForReplies(w, threadId, 2);
    expect(w.openai.requests.some((r) => JSON.stringify(r.body).includes('beep'))).toBe(false);
  });
});
