// Issue 12, cases 5 and 8: a moderator's action stands whatever a vote is doing, and branch ids typed by people
// never reach Object's own properties.
import { afterEach, describe, expect, it } from 'vitest';
import { replyFor } from '../emulators/openai/index.ts';
import {
  alternativesIn,
  alternativeText,
  answersTo,
  branchList,
  type Person,
  ROOMY,
  restart,
  say,
} from './fault-probes.ts';
import {
  assistant,
  click,
  conversationHolding,
  createWorld,
  MODEL,
  openVote,
  replies,
  type Said,
  startThread,
  user,
  type World,
  waitForBallot,
  waitForReplies,
} from './harness.ts';

let world: World | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

const ENV = { ALTERNATIVES_COOLDOWN_SECONDS: '0' };
/** The winner's move at the provider appends its items to the parent's conversation: this route. */
const APPEND_ITEMS = 'POST /v1/conversations/:id/items';

async function setUp() {
  world = await createWorld({ discord: ROOMY });
  const bot = await world.startBot(ENV);
  const alice = world.discord.createUser({ username: 'alice' });
  const mod = world.discord.createUser({ username: 'mod', manageThreads: true });
  return { w: world, bot, alice, mod };
}

/** Opens a vote on two alternatives of `prompt`; returns its ballot and each letter's history. */
async function fork(w: World, threadId: string, who: Person, prompt: string, history: Said[]) {
  const before = new Set(alternativesIn(w, threadId).map((m) => m.id));
  const ballot = await openVote(w, threadId, who.id, { count: 2, prompt, styles: 'one | two' });
  const [a, b] = alternativesIn(w, threadId).filter((m) => !before.has(m.id));
  const asked = user(`${who.username}: ${prompt}`);
  return {
    ballot,
    A: [...history, asked, assistant(alternativeText(a!))],
    B: [...history, asked, assistant(alternativeText(b!))],
  };
}

function branch(
  w: World,
  threadId: string,
  mod: Person,
  subcommand: string,
  options: Record<string, string>,
) {
  return w.discord.runCommand({ channelId: threadId, userId: mod.id, name: 'branch', subcommand, options });
}

describe("a moderator's action stands", () => {
  it('a switch made while the closed vote is being applied stays, across the apply and a restart', async () => {
    const { w, bot, alice, mod } = await setUp();
    const threadId = await startThread(w, alice.id, 'hello');
    const history: Said[] = [user('alice: hello'), assistant(replies(w, threadId)[0]!.text)];
    const { ballot, A } = await fork(w, threadId, alice, 'fork', history);

    // The winner's move at the provider is held up (rate limited for 2 s) while the moderator switches.
    w.openai.failNext({ route: APPEND_ITEMS, status: 429, retryAfterSeconds: 2 });
    expect((await click(w, ballot, 'B', alice.id)).content).toMatch(/The vote is closed: \*\*B\*\* wins/);
    await w.discord.waitFor(() =>
      w.openai.requests.find((r) => r.route === APPEND_ITEMS && r.status === 429),
    );
    const switched = await branch(w, threadId, mod, 'switch', { branch: 'b2' }).response({
      timeoutMs: 30_000,
    });
    expect(switched.content).toBe('Done: Switched to b2.');
    expect(switched.ephemeral).toBe(true);
    // The move it waited for was done first: B's items reached the parent's conversation.
    expect(w.openai.requests.filter((r) => r.route === APPEND_ITEMS).map((r) => r.status)).toEqual([
      429, 200,
    ]);

    await waitForBallot(w, threadId, (m) => m.id === ballot.id && m.content.startsWith('✅ **B wins'));
    expect(
      w.discord.messages(threadId).filter((m) => m.content.startsWith('🌿 Switched to b2 by')),
    ).toHaveLength(1);
    expect(await branchList(w, threadId, mod.id)).toEqual({ ids: ['b1', 'b2', 'b3'], active: 'b2' });
    let onA = await say(w, threadId, alice, 'after the switch', A);
    await restart(w, bot, ENV);
    onA = await say(w, threadId, alice, 'after the restart', onA);
    expect(conversationHolding(w, 'alice: after the switch')).toEqual(onA.map((m) => m.text));
  });

  it('a switch racing the click that closes the vote stays, whichever lands first', async () => {
    const { w, alice, mod } = await setUp();
    const threadId = await startThread(w, alice.id, 'hello');
    const history: Said[] = [user('alice: hello'), assistant(replies(w, threadId)[0]!.text)];
    const { ballot, A } = await fork(w, threadId, alice, 'fork', history);

    const [voted, switched] = await Promise.all([
      click(w, ballot, 'B', alice.id),
      branch(w, threadId, mod, 'switch', { branch: 'b2' }).response({ timeoutMs: 30_000 }),
    ]);
    expect(switched.content).toBe('Done: Switched to b2.');
    // Either the click came first (and B won, then the switch), or the switch did (and cancelled the vote).
    expect(voted.content).toMatch(/The vote is closed: \*\*B\*\* wins|This vote was cancelled/);
    await waitForBallot(
      w,
      threadId,
      (m) => m.id === ballot.id && /^(✅ \*\*B wins|🚫 \*\*This vote was cancelled)/u.test(m.content),
    );
    expect((await branchList(w, threadId, mod.id)).active).toBe('b2');
    await say(w, threadId, alice, 'after the race', A);
  });

  it('a prune right after a vote closes never deletes the winning branch', async () => {
    const { w, alice, mod } = await setUp();
    const threadId = await startThread(w, alice.id, 'hello');
    const history: Said[] = [user('alice: hello'), assistant(replies(w, threadId)[0]!.text)];
    const first = await fork(w, threadId, alice, 'fork one', history);
    await click(w, first.ballot, 'B', alice.id); // b3 wins, b2 loses
    const onB3 = await say(w, threadId, alice, 'between the forks', first.B);

    const second = await fork(w, threadId, alice, 'fork two', onB3); // b4 and b5
    w.openai.failNext({ route: APPEND_ITEMS, status: 429, retryAfterSeconds: 2 });
    await click(w, second.ballot, 'B', alice.id); // b5 wins, moved at the provider meanwhile
    const confirm = await branch(w, threadId, mod, 'prune', {}).response();
    expect(confirm.content).toMatch(/^Delete \d inactive branch/);
    expect(confirm.content).not.toMatch(/b3|b5/);
    await click(w, confirm, 'Delete', mod.id);
    const pruned = await w.discord.waitFor(() =>
      w.discord.messages(threadId).find((m) => m.content.startsWith('🌿 Pruned')),
    );
    expect(pruned.content).toMatch(/^🌿 Pruned 2 branches \(b2, b4\) by/);
    expect(await branchList(w, threadId, mod.id)).toEqual({ ids: ['b1', 'b3', 'b5'], active: 'b5' });
    const onB5 = await say(w, threadId, alice, 'after the prune', second.B);
    expect(conversationHolding(w, 'alice: after the prune')).toEqual(onB5.map((m) => m.text));
  });
});

describe('branch ids people type', () => {
  it("answers that Object's property names are no branches, changes nothing, and every later message is answered once", async () => {
    const { w, bot, alice, mod } = await setUp();
    const threadId = await startThread(w, alice.id, 'hello');
    let history: Said[] = [user('alice: hello'), assistant(replies(w, threadId)[0]!.text)];

    for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      const switched = await branch(w, threadId, mod, 'switch', { branch: name }).response();
      expect(switched.ephemeral).toBe(true);
      expect(switched.content).toBe(`⚠️ There is no branch ${name} in this thread; /branch list shows them.`);
      const reset = await branch(w, threadId, mod, 'reset', { to: name }).response();
      expect(reset.ephemeral).toBe(true);
      expect(reset.content).toBe(`⚠️ There is no branch ${name} in this thread; /branch list shows them.`);
    }
    expect(await branchList(w, threadId, mod.id)).toEqual({ ids: ['b1'], active: 'b1' });
    expect(w.discord.messages(threadId).some((m) => m.content.startsWith('🌿'))).toBe(false);

    // Three messages at once: each answered once, in order, each from the history before it.
    const texts = ['first after', 'second after', 'third after'];
    for (const text of texts) w.discord.postMessage(threadId, alice.id, text);
    const answered = await waitForReplies(w, threadId, 4, 20_000);
    for (const [index, text] of texts.entries()) {
      history = [...history, user(`alice: ${text}`)];
      expect(answered[index + 1]!.text).toBe(replyFor({ model: MODEL, messages: history }));
      expect(answersTo(w, `alice: ${text}`)).toHaveLength(1);
      history = [...history, assistant(answered[index + 1]!.text)];
    }
    expect(replies(w, threadId)).toHaveLength(4);
    expect(conversationHolding(w, 'alice: hello')).toEqual(history.map((m) => m.text));
    expect(bot.logs.filter((l) => l.level >= 50)).toEqual([]);
  });
});
