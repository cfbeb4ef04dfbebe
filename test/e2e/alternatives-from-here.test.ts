import { afterEach, describe, expect, it } from 'vitest';
import {
  alternativesIn,
  click,
  command,
  createWorld,
  replyTo,
  startThread,
  type World,
  waitForBallot,
} from './harness.ts';

let world: World | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

describe('Alternatives from here', () => {
  it.each(['conversations', 'responses', 'chat'])(
    'forks before an earlier reply (%s): alternatives to it, a vote, and the thread goes on without the later turns',
    async (backend) => {
      world = await createWorld();
      const w = world;
      const bot = await w.startBot({ BACKEND: backend });
      const alice = w.discord.createUser({ username: 'alice', manageThreads: true });
      const threadId = await startThread(w, alice.id, 'first question');
      const second = w.discord.postMessage(threadId, alice.id, 'second question');
      await replyTo(w, threadId, 'alice: second question');
      w.discord.postMessage(threadId, alice.id, 'third question');
      await replyTo(w, threadId, 'alice: third question');
      const earlier = w.discord
        .messages(threadId)
        .find((m) => m.authorId === w.discord.botUserId && m.referenceId === second.id);
      expect(earlier?.content).toMatch(/reply 2 to "alice: second question"/);

      // The bot registered it as a message command; a person picks it on the earlier reply.
      expect(
        (w.discord.commands(w.discord.guildId) as { name: string; type?: number }[]).some(
          (c) => c.name === 'Alternatives from here' && c.type === 3,
        ),
      ).toBe(true);
      const response = await w.discord
        .runMessageCommand({ userId: alice.id, name: 'Alternatives from here', targetMessageId: earlier!.id })
        .response({ timeoutMs: 30_000 });
      const ballot = await waitForBallot(w, threadId, (m) => m.content.startsWith('🗳'));
      await w.discord.waitFor(
        () => /Forked before that reply/.test(w.discord.message(response.id)?.content ?? ''),
        {
          message: 'the invoker is told the fork happened',
        },
      );
      // Both alternatives answer the second question having seen only what came before it (3 messages).
      const alternatives = alternativesIn(w, threadId);
      expect(alternatives).toHaveLength(2);
      for (const alternative of alternatives) {
        expect(alternative.content).toMatch(/reply 2 to "alice: second question" · saw 3 msgs/);
        expect(alternative.referenceId).toBe(second.id);
      }

      await click(w, ballot, 'B', alice.id);
      await waitForBallot(w, threadId, (m) => m.id === ballot.id && m.content.startsWith('✅'));
      // The thread goes on after B: the third turn is not in its history any more.
      w.discord.postMessage(threadId, alice.id, 'after the fork');
      const next = await replyTo(w, threadId, 'alice: after the fork');
      expect(next.text).toMatch(/reply 3 to "alice: after the fork" · saw 5 msgs/);
      // The winner took over the old branch's provider state (no fallback to a copy).
      expect(bot.logs.filter((l) => l.level >= 40)).toEqual([]);

      // The tree says where it forked: after item 3 of b1 (first question, its reply, the second question); the list is JSON, so [^\\] keeps each match on one line.
      const list = await command(w, {
        channelId: threadId,
        userId: alice.id,
        name: 'branch',
        subcommand: 'list',
      });
      expect(list).toMatch(/b2\*\* alternative A[^\\]*from b1 · \d+ turns · forked at item 3/);
      expect(list).toMatch(/b3\*\* alternative B[^\\]*from b1 · \d+ turns · forked at item 3[^\\]*active/);
    },
    90_000,
  );

  it('refuses a message that is not a reply of the bot', async () => {
    world = await createWorld();
    const w = world;
    await w.startBot();
    const alice = w.discord.createUser({ username: 'alice' });
    const threadId = await startThread(w, alice.id, 'hello');
    const mine = w.discord.postMessage(threadId, alice.id, 'my own message');
    await replyTo(w, threadId, 'alice: my own message');
    const response = await w.discord
      .runMessageCommand({ userId: alice.id, name: 'Alternatives from here', targetMessageId: mine.id })
      .response();
    expect(response.content).toMatch(/Pick a reply of the bot/);
    expect(response.ephemeral).toBe(true);
  });
});
