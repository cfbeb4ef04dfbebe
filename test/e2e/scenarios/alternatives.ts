import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackendKind } from '../../../src/core/model.ts';
import type { MessageView } from '../../emulators/discord/index.ts';
import { type RecordedRequest, replyFor } from '../../emulators/openai/index.ts';
import {
  alternativesIn,
  assistant,
  type BotProcess,
  buttonId,
  buttonIds,
  click,
  command,
  createWorld,
  MODEL,
  openVote,
  replies,
  replyTo,
  startThread,
  user,
  type World,
  waitForBallot,
  waitForReplies,
} from '../harness.ts';
import type { ScenarioOptions } from './options.ts';

/** The /alternatives scenarios, run against one backend. */
export function alternativesScenarios(backend: BackendKind, options: ScenarioOptions = {}): void {
  let world: World;
  let bot: BotProcess;
  let alice: { id: string };
  let bob: { id: string };
  let carol: { id: string };
  let mod: { id: string };

  beforeAll(async () => {
    world = await createWorld();
    bot = await world.startBot({ ALTERNATIVES_COOLDOWN_SECONDS: '0', BACKEND: backend, ...options.env?.() });
    alice = world.discord.createUser({ username: 'alice' });
    bob = world.discord.createUser({ username: 'bob' });
    carol = world.discord.createUser({ username: 'carol' });
    mod = world.discord.createUser({ username: 'mod', manageThreads: true });
  });
  afterAll(() => world.close());

  async function threadWithTurns(prompt: string, quorum?: number): Promise<string> {
    const threadId = await startThread(world, alice.id, prompt);
    world.discord.postMessage(threadId, bob.id, 'second message');
    await waitForReplies(world, threadId, 2);
    if (quorum !== undefined) {
      await command(world, { channelId: threadId, userId: mod.id, name: 'settings', options: { quorum } });
    }
    return threadId;
  }

  /** A model request of any backend: Responses or Chat Completions. */
  function isGeneration(r: RecordedRequest): boolean {
    return (r.route === 'POST /v1/responses' || r.route === 'POST /v1/chat/completions') && r.status === 200;
  }

  /** What a generation request says the history is, instructions aside (they differ by style). */
  function sentHistory(r: RecordedRequest): string {
    const body = r.body as { input?: unknown; previous_response_id?: string; messages?: { role: string }[] };
    return JSON.stringify([
      body.previous_response_id,
      body.input,
      body.messages?.filter((m) => m.role !== 'system'),
    ]);
  }

  /** An alternative's text, without its header line and its usage line. */
  function alternativeText(message: string): string {
    return message.split('\n').slice(1, -1).join('\n');
  }

  function alternativesOf(threadId: string) {
    return alternativesIn(world, threadId);
  }

  describe(`/alternatives (${backend} backend${options.label ? `, ${options.label}` : ''})`, () => {
    it('generates the alternatives at once from the same history, and the quorum continues on the winner only', async () => {
      const threadId = await threadWithTurns('plan a trip to Porto', 2);
      world.openai.setLatency({ firstTokenMs: 300, tokensPerSecond: 50 });
      const requestsBefore = world.openai.requests.length;
      let ballot: MessageView;
      try {
        const reply = await command(world, {
          channelId: threadId,
          userId: alice.id,
          name: 'alternatives',
          options: {
            count: 3,
            prompt: 'where should we eat?',
            styles: 'formal travel agent | funny travel buddy',
          },
        });
        expect(reply).toMatch(/Vote opened on 3 alternatives/);
        ballot = await waitForBallot(world, threadId);
      } finally {
        world.openai.setLatency({ firstTokenMs: 0 });
      }
      const generations = world.openai.requests.slice(requestsBefore).filter(isGeneration);
      expect(generations).toHaveLength(3);
      // All in flight together (backends that send one request each start the others from the first one's first
      // token, so they read its prompt from the provider's cache).
      const lastStart = Math.max(...generations.map((g) => g.startedAt));
      expect(generations.every((g) => (g.endedAt ?? 0) > lastStart)).toBe(true);
      const inputs = generations.map(sentHistory);
      expect(new Set(inputs).size).toBe(1);
      expect(inputs[0]).toContain('alice: where should we eat?');
      expect(world.openai.requests.filter((r) => r.status === 400)).toEqual([]);

      const shown = alternativesOf(threadId);
      expect(shown.map((m) => m.content.split('\n')[0])).toEqual([
        '**A** · formal travel agent',
        '**B** · funny travel buddy',
        '**C** · default',
      ]);
      expect(shown.every((m) => /-# \d+ in · \d+ out tokens/.test(m.content))).toBe(true);
      const [winner, loser] = [shown[1]!.content, shown[0]!.content];

      const vote = (userId: string, letter: string) =>
        world.discord
          .clickButton({ messageId: ballot.id, customId: buttonId(ballot, letter), userId })
          .response();
      expect((await vote(alice.id, 'A')).content).toMatch(/Your vote: \*\*A\*\*/);
      expect((await vote(alice.id, 'B')).content).toMatch(/moved to: \*\*B\*\*/);
      await vote(bob.id, 'C');
      // A message posted while the vote is open waits for it.
      world.discord.postMessage(threadId, carol.id, 'so what is the plan?');
      expect((await vote(carol.id, 'B')).content).toMatch(/B\*\* wins/);
      const closed = await waitForBallot(world, threadId, (m) => m.content.startsWith('✅'));
      expect(closed.content).toMatch(/B wins\*\* with 2 of 3 votes/);
      // Voting is over; reading the alternatives in full is not.
      const [read, voting] = [
        buttonIds(closed).filter((b) => b.label.startsWith('Read')),
        buttonIds(closed).filter((b) => !b.label.startsWith('Read')),
      ];
      expect(voting.every((b) => b.disabled)).toBe(true);
      expect(read.map((b) => [b.label, b.disabled])).toEqual([
        ['Read A in full', false],
        ['Read B in full', false],
        ['Read C in full', false],
      ]);

      // The next reply comes from a history holding the winner's text, and none of the losers'.
      const [first, second] = replies(world, threadId);
      const next = (await replyTo(world, threadId, 'carol: so what is the plan?')).text;
      expect(next).toBe(
        replyFor({
          model: MODEL,
          messages: [
            user('alice: plan a trip to Porto'),
            assistant(first!.text),
            user('bob: second message'),
            assistant(second!.text),
            user('alice: where should we eat?'),
            assistant(alternativeText(winner)),
            user('carol: so what is the plan?'),
          ],
        }),
      );
      expect(alternativeText(loser)).not.toBe(alternativeText(winner));
    });

    it('answers the last message again when no prompt is given, keeping the current reply as A', async () => {
      const threadId = await threadWithTurns('name a colour');
      const before = replies(world, threadId).at(-1)!.text;
      const ballot = await openVote(world, threadId, alice.id, { count: 2 });
      expect(alternativesOf(threadId).map((m) => m.content.split('\n')[0])).toEqual(['**B** · default']);
      expect(buttonIds(ballot).map((b) => b.label)).toEqual([
        'A · 0',
        'Read A in full',
        'B · 0',
        'Read B in full',
        'Close vote',
        'Moderator pick…',
      ]);
      // The invoker closes it: no votes, so A (the reply it already had) stands.
      await click(world, ballot, 'Close', alice.id);
      await waitForBallot(world, threadId, (m) => m.content.startsWith('✅ **A wins'));
      const first = replies(world, threadId)[0]!.text;
      world.discord.postMessage(threadId, alice.id, 'and then?');
      expect((await replyTo(world, threadId, 'alice: and then?')).text).toBe(
        replyFor({
          model: MODEL,
          messages: [
            user('alice: name a colour'),
            assistant(first),
            user('bob: second message'),
            assistant(before),
            user('alice: and then?'),
          ],
        }),
      );
    });

    it('lets a moderator pick the winner, and refuses everyone else', async () => {
      const threadId = await threadWithTurns('pick one', 5);
      const ballot = await openVote(world, threadId, alice.id, { count: 2, prompt: 'go' });
      const refused = await click(world, ballot, 'Close', bob.id);
      expect(refused.content).toMatch(/Only the person who asked/);
      const notMod = await click(world, ballot, 'Moderator', bob.id);
      expect(notMod.content).toMatch(/Only moderators/);
      const menu = await click(world, ballot, 'Moderator', mod.id);
      await click(world, menu, 'B', mod.id);
      const closed = await waitForBallot(world, threadId, (m) => m.content.startsWith('✅'));
      expect(closed.content).toMatch(/B wins.*picked by moderator/);
    });

    it('closes at the deadline on A when nobody votes', async () => {
      const threadId = await threadWithTurns('slow vote');
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
    });

    it('counts thirty people clicking at once exactly', async () => {
      const threadId = await threadWithTurns('popular thread', 100);
      const ballot = await openVote(world, threadId, alice.id, { count: 3, prompt: 'go' });
      const voters = Array.from({ length: 30 }, (_, i) =>
        world.discord.createUser({ username: `voter${i}` }),
      );
      await Promise.all(voters.map((v, i) => click(world, ballot, 'ABC'[i % 3]!, v.id)));
      const tallied = await waitForBallot(world, threadId, (m) =>
        m.content.includes('**A** 10 · **B** 10 · **C** 10'),
      );
      expect(
        buttonIds(tallied)
          .filter((b) => /^[A-E] · /.test(b.label))
          .map((b) => b.label),
      ).toEqual(['A · 10', 'B · 10', 'C · 10']);
    });

    it('refuses bad input with an ephemeral message and changes nothing', async () => {
      const threadId = await threadWithTurns('strict thread', 5);
      const outside = await command(world, {
        channelId: world.discord.channelId,
        userId: alice.id,
        name: 'alternatives',
      });
      expect(outside).toMatch(/thread started with \/chat/);
      expect(
        await command(world, {
          channelId: threadId,
          userId: alice.id,
          name: 'alternatives',
          options: { count: 9 },
        }),
      ).toMatch(/between 2 and 5/);
      const ballot = await openVote(world, threadId, alice.id, { count: 2, prompt: 'go' });
      expect(await command(world, { channelId: threadId, userId: bob.id, name: 'alternatives' })).toMatch(
        /already open/,
      );
      await click(world, ballot, 'Close', alice.id);
      await waitForBallot(world, threadId, (m) => m.content.startsWith('✅'));
      const late = await world.discord
        .clickButton({ messageId: ballot.id, customId: buttonId(ballot, 'B'), userId: bob.id, stale: true })
        .response();
      expect(late.content).toMatch(/already closed/);
      const unknown = await world.discord
        .clickButton({ messageId: ballot.id, customId: 'vote:nosuchvote:A', userId: bob.id, stale: true })
        .response();
      expect(unknown.content).toMatch(/no longer exists/);
      expect(bot.logs.filter((l) => l.level >= 50)).toEqual([]);
    });
  });
}
