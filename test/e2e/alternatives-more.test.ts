import { afterEach, describe, expect, it } from 'vitest';
import {
  alternativesIn,
  buttonId,
  click,
  command,
  createWorld,
  openVote,
  replies,
  startThread,
  type World,
  waitForBallot,
  waitForReplies,
} from './harness.ts';

let world: World | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

const fast = {
  rateLimits: {
    messageCreate: { limit: 1000, windowMs: 1000 },
    messageEdit: { limit: 1000, windowMs: 1000 },
  },
};

describe('/alternatives, more', () => {
  it('keeps its buttons working across a restart between the alternatives and the vote', async () => {
    world = await createWorld();
    const w = world;
    const bot = await w.startBot();
    const alice = w.discord.createUser({ username: 'alice' });
    const threadId = await startThread(w, alice.id, 'before the restart');
    const ballot = await openVote(w, threadId, alice.id, { count: 2, prompt: 'fork' });
    await bot.stop();
    await w.startBot();
    await click(w, ballot, 'B', alice.id);
    await waitForBallot(
      w,
      threadId,
      (m) => m.id === ballot.id && m.content.startsWith('✅ **B wins'),
      30_000,
    );
    w.discord.postMessage(threadId, alice.id, 'after');
    const reply = await w.discord.waitFor(
      () => replies(w, threadId).find((r) => !r.streaming && r.text.includes('"alice: after')),
      { timeoutMs: 30_000 },
    );
    expect(reply.text).toMatch(/saw 5 msgs/);
  }, 90_000);

  it('makes the same number of provider calls at a history of 10 and of 200 items', async () => {
    world = await createWorld({ discord: fast });
    const w = world;
    await w.startBot({ ALTERNATIVES_COOLDOWN_SECONDS: '0' });
    const alice = w.discord.createUser({ username: 'alice' });
    const callsAt = async (items: number) => {
      const threadId = await startThread(w, alice.id, `history of ${items}`);
      for (let turn = 1; turn < items / 2; turn += 1)
        w.discord.postMessage(threadId, alice.id, `message ${turn}`);
      await waitForReplies(w, threadId, items / 2, 60_000);
      const before = w.openai.requests.length;
      const ballot = await openVote(w, threadId, alice.id, { count: 3, prompt: 'fork' });
      await click(w, ballot, 'C', alice.id);
      await waitForBallot(w, threadId, (m) => m.id === ballot.id && m.content.startsWith('✅'));
      // The winner's move onto the parent's conversation happens as the vote closes: wait for the thread to settle.
      w.discord.postMessage(threadId, alice.id, 'settled?');
      await w.discord.waitFor(() =>
        replies(w, threadId).find((r) => !r.streaming && r.text.includes('"alice: settled?')),
      );
      return w.openai.requests.slice(before).length - 1; // less the turn that answered "settled?"
    };
    const [small, large] = [await callsAt(10), await callsAt(200)];
    expect(small).toBe(large);
    expect(small).toBeLessThanOrEqual(3 + 4); // three generations; moving the winner: list, delete-free append
  });

  it('shows a failed alternative with its reason, and votes among the others', async () => {
    world = await createWorld();
    const w = world;
    await w.startBot();
    const alice = w.discord.createUser({ username: 'alice' });
    const threadId = await startThread(w, alice.id, 'one will fail');
    w.openai.failNext({
      route: 'POST /v1/responses',
      status: 400,
      code: 'invalid_prompt',
      message: 'Invalid prompt: flagged as potentially violating our usage policy.',
    });
    const said = await command(w, {
      channelId: threadId,
      userId: alice.id,
      name: 'alternatives',
      options: { count: 3, prompt: 'try three' },
    });
    expect(said).toMatch(/Vote opened on 2 alternatives/);
    const ballot = await waitForBallot(w, threadId);
    const failed = alternativesIn(w, threadId).find((m) => m.content.includes('⚠️'));
    expect(failed?.content).toMatch(/OpenAI rejected the request: Invalid prompt/);
    const letter = failed!.content[2]!;
    expect(ballot.content).toContain(`~~${letter}~~ failed`);
    const usable = ['A', 'B', 'C'].find((l) => l !== letter)!;
    await click(w, ballot, usable, alice.id);
    await waitForBallot(w, threadId, (m) => m.content.startsWith(`✅ **${usable} wins`));
  });

  it('holds each person to the cooldown, with the time left', async () => {
    world = await createWorld();
    const w = world;
    await w.startBot({ ALTERNATIVES_COOLDOWN_SECONDS: '60' });
    const alice = w.discord.createUser({ username: 'alice' });
    const threadId = await startThread(w, alice.id, 'cooling');
    const ballot = await openVote(w, threadId, alice.id, { count: 2, prompt: 'fork' });
    await click(w, ballot, 'A', alice.id);
    await waitForBallot(w, threadId, (m) => m.content.startsWith('✅'));
    const refused = await command(w, {
      channelId: threadId,
      userId: alice.id,
      name: 'alternatives',
      options: { count: 2 },
    });
    // The cooldown is taken when the request is accepted (before the fork), so a little of it has passed.
    const left = Number(/You can ask for alternatives again in (\d+) s/.exec(refused)?.[1]);
    expect(left).toBeGreaterThan(30);
    expect(left).toBeLessThanOrEqual(60);
  });

  it('gives every message alternatives when the thread asks for it', async () => {
    world = await createWorld();
    const w = world;
    await w.startBot();
    const alice = w.discord.createUser({ username: 'alice' });
    const mod = w.discord.createUser({ username: 'mod', manageThreads: true });
    const threadId = await startThread(w, alice.id, 'automatic');
    expect(
      await command(w, {
        channelId: threadId,
        userId: mod.id,
        name: 'settings',
        options: { auto_alternatives: 2 },
      }),
    ).toMatch(/2 for every message/);
    w.discord.postMessage(threadId, alice.id, 'surprise me');
    const ballot = await waitForBallot(w, threadId);
    expect(ballot.content).toMatch(/Which reply should the thread continue with/);
    const alternatives = alternativesIn(w, threadId);
    expect(alternatives.map((m) => m.content)).toEqual([
      expect.stringContaining('alice: surprise me'),
      expect.stringContaining('alice: surprise me'),
    ]);
  });

  it('asks a Chat Completions server once, with n, for alternatives that share their settings', async () => {
    world = await createWorld();
    const w = world;
    await w.startBot({ BACKEND: 'chat', ALTERNATIVES_COOLDOWN_SECONDS: '0' });
    const alice = w.discord.createUser({ username: 'alice' });
    const threadId = await startThread(w, alice.id, 'batch me');
    const before = w.openai.requests.length;
    await command(w, {
      channelId: threadId,
      userId: alice.id,
      name: 'alternatives',
      options: { count: 3, prompt: 'three ways' },
    });
    await waitForBallot(w, threadId);
    const calls = w.openai.requests.slice(before).filter((r) => r.route === 'POST /v1/chat/completions');
    expect(calls).toHaveLength(1);
    expect((calls[0]!.body as { n?: number }).n).toBe(3);
    // The prompt is paid once: only the first alternative reports input tokens.
    const usage = alternativesIn(w, threadId).map((m) => Number(m.content.match(/-# (\d+) in/)?.[1]));
    expect(usage[0]).toBeGreaterThan(0);
    expect(usage.slice(1)).toEqual([0, 0]);

    // A server that refuses n > 1 (llama.cpp) gets one request per alternative instead.
    w.openai.setChatRejectsMultipleChoices(true);
    await w.discord
      .clickButton({
        messageId: (await waitForBallot(w, threadId)).id,
        customId: buttonId(await waitForBallot(w, threadId), 'A'),
        userId: alice.id,
      })
      .response();
    await waitForBallot(w, threadId, (m) => m.content.startsWith('✅'));
    const beforeRefusal = w.openai.requests.length;
    await command(w, {
      channelId: threadId,
      userId: alice.id,
      name: 'alternatives',
      options: { count: 2, prompt: 'again' },
    });
    await waitForBallot(w, threadId, (m) => m.content.startsWith('🗳'));
    const retried = w.openai.requests
      .slice(beforeRefusal)
      .filter((r) => r.route === 'POST /v1/chat/completions');
    expect(retried.filter((r) => r.status === 200)).toHaveLength(2);
  });
});
