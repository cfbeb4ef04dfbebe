/**
 * The demo's script: a Discord thread played against the local Discord and OpenAI emulators, with the real bot in a
 * child process exactly as `npm start` runs it. No token, no network: everything is on 127.0.0.1.
 *
 * Three friends plan a weekend; alice asks for three alternatives in three styles, the three of them vote, the
 * thread continues on the winner; a moderator looks at the branch tree and resets the thread to before the fork.
 */

import {
  buttonId,
  command,
  createWorld,
  startThread,
  type World,
  waitForBallot,
  waitForReplies,
} from '../test/e2e/harness.ts';
import type { MessageView } from '../test/emulators/discord/index.ts';
import { Transcript } from './transcript.ts';

export const STYLES = ['formal travel agent', 'funny travel buddy', 'local foodie'] as const;

/** Resolves once a bot reply to `messageId` is in the thread and finished (no Stop button). */
function replyTo(world: World, threadId: string, messageId: string): Promise<MessageView> {
  return world.discord.waitFor(
    () =>
      world.discord
        .messages(threadId)
        .find(
          (m) =>
            m.authorId === world.discord.botUserId &&
            m.referenceId === messageId &&
            !JSON.stringify(m.components).includes('"stop:'),
        ),
    { timeoutMs: 20_000, message: `a reply to message ${messageId}` },
  );
}

/** Plays the scenario and returns the transcript of what people saw. */
export async function runDemo(): Promise<string> {
  const world = await createWorld();
  try {
    await world.startBot({ LOG_LEVEL: 'info', ALTERNATIVES_COOLDOWN_SECONDS: '0' });
    const { discord } = world;
    const t = new Transcript(world);
    const alice = discord.createUser({ username: 'alice' });
    const bob = discord.createUser({ username: 'bob' });
    const carol = discord.createUser({ username: 'carol' });
    const mod = discord.createUser({ username: 'mod', manageThreads: true });
    for (const person of [alice, bob, carol, mod]) t.person(person);

    t.say(
      'threadfork demo: a Discord server and OpenAI, both emulated on this machine (no token, no network).',
    );
    t.say(
      "The model is the emulator's: its replies say which message they answer and how many messages it saw.",
    );
    t.say('alice, bob and carol plan a weekend; mod is a moderator (Manage Threads).');

    t.channel(discord.channelId);
    t.say('» alice uses /chat prompt:"plan a weekend in Porto"');
    const threadId = await startThread(world, alice.id, 'plan a weekend in Porto');
    t.look(discord.channelId);

    t.channel(threadId);
    t.look(threadId);
    const chat = async (user: { id: string }, text: string, replies: number) => {
      discord.postMessage(threadId, user.id, text);
      await waitForReplies(world, threadId, replies);
      t.look(threadId);
    };
    await chat(bob, 'what about food?', 2);
    await chat(carol, 'and if it rains on Sunday?', 3);

    t.say('» mod uses /settings quorum:2 (two votes decide)');
    await command(world, { channelId: threadId, userId: mod.id, name: 'settings', options: { quorum: 2 } });
    t.look(threadId);

    const prompt = 'where should we eat on Saturday night?';
    t.say(`» alice uses /alternatives count:3 prompt:"${prompt}" styles:"${STYLES.join(' | ')}"`);
    await command(world, {
      channelId: threadId,
      userId: alice.id,
      name: 'alternatives',
      options: { count: 3, prompt, styles: STYLES.join(' | ') },
    });
    const ballot = await waitForBallot(world, threadId, (m) => !m.ephemeral && m.content.startsWith('🗳'));
    t.look(threadId);

    const vote = async (user: { id: string; username: string }, letter: string, tally: string) => {
      t.say(`» ${user.username} presses [${letter}]`);
      const current = discord.message(ballot.id)!;
      await discord
        .clickButton({ messageId: ballot.id, customId: buttonId(current, letter), userId: user.id })
        .response();
      await discord.waitFor(() => discord.message(ballot.id)?.text.includes(tally), {
        timeoutMs: 20_000,
        message: `the ballot to show ${tally}`,
      });
      t.look(threadId);
    };
    await vote(alice, 'A', '**A** 1 · **B** 0 · **C** 0');
    await vote(bob, 'B', '**A** 1 · **B** 1 · **C** 0');
    const waiting = discord.postMessage(threadId, bob.id, 'great, can we book it for 8pm?');
    t.say('(bob posted while the vote is open: his message waits for the winner)');
    t.look(threadId);
    await vote(carol, 'B', 'B wins');
    await replyTo(world, threadId, waiting.id);
    t.look(threadId);

    t.say('» mod uses /branch list');
    await command(world, { channelId: threadId, userId: mod.id, name: 'branch', subcommand: 'list' });
    t.look(threadId);
    t.say('» mod uses /branch reset (undo the last fork)');
    await command(world, { channelId: threadId, userId: mod.id, name: 'branch', subcommand: 'reset' });
    await discord.waitFor(() => discord.messages(threadId).find((m) => m.content.startsWith('🌿')), {
      message: 'the reset notice',
    });
    t.look(threadId);
    t.say('» mod uses /branch list');
    await command(world, { channelId: threadId, userId: mod.id, name: 'branch', subcommand: 'list' });
    t.look(threadId);

    const again = discord.postMessage(threadId, alice.id, "ok, let's think about Saturday night again");
    await replyTo(world, threadId, again.id);
    t.look(threadId);
    t.say('');
    t.say('The last reply saw the thread as it was before the fork: the reset put it back on b1.');
    return t.text();
  } finally {
    await world.close();
  }
}
