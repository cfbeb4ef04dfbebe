import { afterEach, describe, expect, it } from 'vitest';
import {
  alternativesIn,
  click,
  command,
  createWorld,
  openVote,
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

describe('vote rules', () => {
  it('votes blind: letters only until the vote closes, then each letter is revealed', async () => {
    world = await createWorld();
    const w = world;
    await w.startBot();
    const alice = w.discord.createUser({ username: 'alice' });
    const mod = w.discord.createUser({ username: 'mod', manageThreads: true });
    const threadId = await startThread(w, alice.id, 'blind tasting');
    expect(
      await command(w, { channelId: threadId, userId: mod.id, name: 'settings', options: { blind: true } }),
    ).toMatch(/blind/);
    const ballot = await openVote(w, threadId, alice.id, {
      count: 2,
      prompt: 'which?',
      styles: 'formal | funny',
    });
    expect(ballot.content).toMatch(/blind/);
    const headers = alternativesIn(w, threadId).map((m) => m.content.split('\n')[0]);
    // Nothing but the letter: no style, no model, while people vote.
    expect(headers.sort()).toEqual(['**A**', '**B**']);
    await click(w, ballot, 'A', alice.id);
    const closed = await waitForBallot(w, threadId, (m) => m.id === ballot.id && m.content.startsWith('✅'));
    const reveal = closed.content.split('\n').find((line) => line.startsWith('**A**: '))!;
    expect(reveal).toMatch(/^\*\*A\*\*: (formal|funny) · \*\*B\*\*: (formal|funny)$/);
    expect(new Set(reveal.match(/formal|funny/g))).toEqual(new Set(['formal', 'funny']));
  });

  it('closes at a majority of the people active in the thread, not at the first click', async () => {
    world = await createWorld();
    const w = world;
    await w.startBot();
    const alice = w.discord.createUser({ username: 'alice' });
    const bob = w.discord.createUser({ username: 'bob' });
    const carol = w.discord.createUser({ username: 'carol' });
    const threadId = await startThread(w, alice.id, 'group decision');
    w.discord.postMessage(threadId, bob.id, 'I am here too');
    await replyTo(w, threadId, 'bob: I am here too');
    w.discord.postMessage(threadId, carol.id, 'me too');
    await replyTo(w, threadId, 'carol: me too');
    const ballot = await openVote(w, threadId, alice.id, { count: 2, prompt: 'decide' });
    // Three people posted: two votes for one alternative decide.
    expect(ballot.content).toMatch(/as soon as one has 2 votes/);
    await click(w, ballot, 'B', alice.id);
    await waitForBallot(w, threadId, (m) => m.id === ballot.id && /\*\*B\*\* 1/.test(m.content));
    expect(w.discord.message(ballot.id)!.text).toMatch(/^🗳/);
    await click(w, ballot, 'B', carol.id);
    await waitForBallot(
      w,
      threadId,
      (m) => m.id === ballot.id && m.content.startsWith('✅ **B wins** with 2 of 2'),
    );
  });
});
