// Issue 17: a fork's alternatives and its ballot stream together, in one message (components v2).
import { afterEach, describe, expect, it } from 'vitest';
import type { MessageView } from '../emulators/discord/index.ts';
import { replyFor } from '../emulators/openai/index.ts';
import {
  alternativesIn,
  assistant,
  click,
  createWorld,
  isStreaming,
  MODEL,
  replies,
  type Said,
  startThread,
  user,
  type World,
  waitForBallot,
} from './harness.ts';

let world: World | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

/** An alternative's text between its header line and its usage line. */
const textOf = (alternative: MessageView) => alternative.content.split('\n').slice(1, -1).join('\n');

async function setUp() {
  // Discord's own limits (5 posts and 5 edits per 5 s in a channel): the live ballot streams within them.
  world = await createWorld();
  await world.startBot({ ALTERNATIVES_COOLDOWN_SECONDS: '0' });
  const alice = world.discord.createUser({ username: 'alice' });
  const bob = world.discord.createUser({ username: 'bob' });
  const threadId = await startThread(world, alice.id, 'hello');
  const history: Said[] = [user('alice: hello'), assistant(replies(world, threadId)[0]!.text)];
  return { w: world, alice, bob, threadId, history };
}

/** The bot's messages in a thread that are not the echo of a prompt, nor seen by one person only. */
const botMessages = (w: World, threadId: string) =>
  w.discord
    .messages(threadId)
    .filter((m) => m.authorId === w.discord.botUserId && !m.ephemeral && !m.text.startsWith('💬'));

describe('the live ballot', () => {
  it('streams every alternative in the one message of the ballot: all show words before any finishes, then all finish and the vote runs there', async () => {
    const { w, alice, threadId, history } = await setUp();
    const before = new Set(botMessages(w, threadId).map((m) => m.id));
    // About 4 s of streaming each, so the thread sees them write.
    w.openai.setLatency({ firstTokenMs: 200, tokensPerSecond: 25 });
    const asked = w.discord.runCommand({
      channelId: threadId,
      userId: alice.id,
      name: 'alternatives',
      options: { count: 3, prompt: '!tokens 100', styles: 'one | two | three' },
    });

    // One moment where every alternative shows words of its own and none has finished.
    const streaming = await w.discord.waitFor(
      () => {
        const shown = alternativesIn(w, threadId).filter((m) => !before.has(m.id));
        // While it streams there is no usage line: all below the header is its text so far.
        const words = (m: MessageView) => m.content.split('\n').slice(1).join('\n').replace('▌', '').trim();
        const writing = shown.filter((m) => isStreaming(m) && !['', '…'].includes(words(m)));
        return shown.length === 3 && writing.length === 3 ? shown : undefined;
      },
      { timeoutMs: 20_000, message: 'all three alternatives show words while all of them still stream' },
    );
    expect(streaming.map((m) => m.content.split('\n')[0])).toEqual([
      '**A** · one',
      '**B** · two',
      '**C** · three',
    ]);
    expect(new Set(streaming.map((m) => m.id)).size).toBe(1);
    const liveId = streaming[0]!.id;
    expect(w.discord.message(liveId)!.text).toMatch(/^⏳ \*\*Writing 3 alternatives…\*\*/);
    w.openai.setLatency({});

    // All finished, in that same message, which is now the ballot: the fork posted nothing else.
    expect((await asked.response({ timeoutMs: 30_000 })).content).toMatch(/Vote opened on 3 alternatives/);
    const ballot = await waitForBallot(w, threadId, (m) => m.content.startsWith('🗳'));
    expect(ballot.id).toBe(liveId);
    expect(
      botMessages(w, threadId)
        .filter((m) => !before.has(m.id))
        .map((m) => m.id),
    ).toEqual([liveId]);
    const expected = replyFor({ model: MODEL, messages: [...history, user('alice: !tokens 100')] });
    const finished = alternativesIn(w, threadId).filter((m) => m.id === liveId);
    expect(finished.map(textOf)).toEqual([expected, expected, expected]);
    for (const alternative of finished) {
      expect(alternative.content).toMatch(/\n-# \d+ in · 100 out tokens$/);
      expect(isStreaming(alternative)).toBe(false);
    }
    expect(ballot.content).toMatch(/\*\*A\*\* 0 · \*\*B\*\* 0 · \*\*C\*\* 0/);

    // People vote in it; alone in the thread, alice's vote decides, and the thread goes on from B.
    expect((await click(w, ballot, 'B', alice.id)).content).toMatch(/Your vote: \*\*B\*\*/);
    const closed = await waitForBallot(w, threadId, (m) => m.id === liveId && m.content.startsWith('✅'));
    expect(closed.content).toMatch(/^✅ \*\*B wins\*\* with 1 of 1 vote/);
    expect(
      alternativesIn(w, threadId)
        .filter((m) => m.id === liveId)
        .map(textOf),
    ).toEqual([expected, expected, expected]);
  });

  it('keeps long alternatives readable: each shows its share of the message, cut with "…", and "Read B in full" answers with the whole text to the one who asked, pinging nobody', async () => {
    const { w, alice, bob, threadId, history } = await setUp();
    const prompt = '!long 3000 !mention';
    const asked = w.discord.runCommand({
      channelId: threadId,
      userId: alice.id,
      name: 'alternatives',
      options: { count: 5, prompt },
    });
    expect((await asked.response({ timeoutMs: 30_000 })).content).toMatch(/Vote opened on 5 alternatives/);
    const ballot = await waitForBallot(w, threadId, (m) => m.content.startsWith('🗳'));
    const full = replyFor({ model: MODEL, messages: [...history, user(`alice: ${prompt}`)] });
    expect(full.length).toBeGreaterThan(3000);

    // Five long alternatives and the ballot share one message's 4,000 characters of text: each shows its start.
    const shown = alternativesIn(w, threadId).filter((m) => m.id === ballot.id);
    expect(shown).toHaveLength(5);
    expect(ballot.content.length).toBeLessThanOrEqual(4000 + 10);
    for (const alternative of shown) {
      const text = textOf(alternative);
      expect(text.endsWith('…')).toBe(true);
      expect(full.startsWith(text.slice(0, -1).trimEnd())).toBe(true);
      expect(text.length).toBeGreaterThan(300);
    }
    // Model output in the ballot pings nobody.
    expect(w.discord.message(ballot.id)!.pinged).toEqual({ users: [], roles: [], everyone: false });

    // Bob reads B in full: the whole text, in messages only he sees, each within Discord's 2,000 characters.
    const seenBefore = w.discord.messages(threadId).length;
    const first = await click(w, ballot, 'Read B in full', bob.id);
    expect(first.ephemeral).toBe(true);
    const parts = await w.discord.waitFor(
      () => {
        const mine = w.discord
          .messages(threadId)
          .slice(seenBefore)
          .filter((m) => m.ephemeral && m.visibleTo === bob.id && m.content !== '');
        return mine
          .map((m) => m.content)
          .join('\n')
          .includes('@everyone')
          ? mine
          : undefined;
      },
      { message: 'the whole of B, up to its last words' },
    );
    // Split as any long reply is (at line breaks, a code block closed and reopened around a cut): the same words.
    const words = (text: string) =>
      text
        .replace(/```\w*/g, '')
        .replace(/\s+/g, ' ')
        .trim();
    expect(words(parts.map((m) => m.content).join('\n'))).toBe(words(full));
    for (const part of parts) {
      expect(part.content.length).toBeLessThanOrEqual(2000);
      expect(part.pinged).toEqual({ users: [], roles: [], everyone: false });
    }
    // Nobody else sees it, and the ballot is as it was.
    expect(
      w.discord
        .messages(threadId)
        .slice(seenBefore)
        .filter((m) => !m.ephemeral),
    ).toEqual([]);
  });

  it('survives the thread being locked while its alternatives stream: reopened, the same message catches up and the vote runs there', async () => {
    world = await createWorld();
    const w = world;
    const bot = await w.startBot({ ALTERNATIVES_COOLDOWN_SECONDS: '0', VOTE_SECONDS: '10' });
    const alice = w.discord.createUser({ username: 'alice' });
    const threadId = await startThread(w, alice.id, 'hello');
    w.openai.setLatency({ firstTokenMs: 200, tokensPerSecond: 25 });
    w.discord.runCommand({
      channelId: threadId,
      userId: alice.id,
      name: 'alternatives',
      options: { count: 2, prompt: '!tokens 100' },
    });
    const live = await w.discord.waitFor(
      () => botMessages(w, threadId).find((m) => m.text.startsWith('⏳') && isStreaming(m)),
      { timeoutMs: 20_000, message: 'the live ballot streams' },
    );
    // A moderator locks the thread mid-stream: the bot's edits are refused (50013), and it says so in its log.
    w.discord.archiveThread(threadId, { locked: true });
    await bot.waitForLog(
      (l) => l.threadId === threadId && (l.err as { code?: number } | undefined)?.code === 50013,
    );
    // Reopened while the alternatives are still being written: the same message catches up, whole.
    w.discord.unarchiveThread(threadId);
    w.discord.lockThread(threadId, false);
    const shown = await w.discord.waitFor(
      () => {
        const found = alternativesIn(w, threadId).filter((m) => m.id === live.id);
        return found.length === 2 && found.every((m) => /\n-# \d+ in/.test(m.content)) ? found : undefined;
      },
      { timeoutMs: 40_000, message: 'both alternatives finished in the live ballot' },
    );
    expect(shown.map((m) => m.content)).toEqual([
      expect.stringMatching(/^\*\*A\*\* · default\n[a-z ]+\n-# \d+ in · 100 out tokens$/),
      expect.stringMatching(/^\*\*B\*\* · default\n[a-z ]+\n-# \d+ in · 100 out tokens$/),
    ]);
    w.openai.setLatency({});
    // Its time runs out with no votes: A, shown in the same message.
    const closed = await waitForBallot(
      w,
      threadId,
      (m) => m.id === live.id && m.content.startsWith('✅'),
      40_000,
    );
    expect(closed.content).toMatch(/^✅ \*\*A wins\*\* with 0 of 0 votes \(time ran out\)/);
    expect(isStreaming(w.discord.message(live.id)!)).toBe(false);
  });
});
