import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackendKind } from '../../../src/core/model.ts';
import { replyFor } from '../../emulators/openai/index.ts';
import {
  alternativesIn,
  assistant,
  type BotProcess,
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
} from '../harness.ts';
import type { ScenarioOptions } from './options.ts';

/** The moderation scenarios (issue: moderators see, switch and reset branches), run against one backend. */
export function moderationScenarios(backend: BackendKind, options: ScenarioOptions = {}): void {
  let world: World;
  let bot: BotProcess;
  let alice: { id: string };
  let mod: { id: string };
  let roleMod: { id: string };
  let auditChannel: string;

  beforeAll(async () => {
    world = await createWorld();
    const role = world.discord.createRole({ name: 'bot wranglers' });
    auditChannel = world.discord.createTextChannel('audit');
    bot = await world.startBot({
      BACKEND: backend,
      ALTERNATIVES_COOLDOWN_SECONDS: '0',
      MODERATOR_ROLE_IDS: role,
      AUDIT_CHANNEL_ID: auditChannel,
      ...options.env?.(),
    });
    alice = world.discord.createUser({ username: 'alice' });
    mod = world.discord.createUser({ username: 'mod', manageThreads: true });
    roleMod = world.discord.createUser({ username: 'wrangler', roles: [role] });
  });
  afterAll(() => world.close());

  const run = (userId: string, threadId: string, subcommand: string, options: Record<string, string> = {}) =>
    command(world, { channelId: threadId, userId, name: 'branch', subcommand, options });

  /** A fork, voted on at once (quorum 1): the thread goes on with `letter`. */
  async function fork(threadId: string, prompt: string, letter: string) {
    await command(world, {
      channelId: threadId,
      userId: alice.id,
      name: 'alternatives',
      options: { count: 2, prompt },
    });
    const ballot = await waitForBallot(world, threadId, (m) => m.content.startsWith('🗳'));
    await click(world, ballot, letter, alice.id);
    await waitForBallot(world, threadId, (m) => m.id === ballot.id && m.content.startsWith('✅'));
  }

  function alternativeTexts(threadId: string): string[] {
    return alternativesIn(world, threadId).map((m) => m.content.split('\n').slice(1, -1).join('\n'));
  }

  async function twoForks(topic: string) {
    const threadId = await startThread(world, alice.id, topic);
    await fork(threadId, 'fork one', 'B'); // b2 (A) loses, b3 (B) wins
    await fork(threadId, 'fork two', 'A'); // b4 (A) wins, b5 (B) loses
    return threadId;
  }

  describe(`moderators (${backend} backend${options.label ? `, ${options.label}` : ''})`, () => {
    it('lists the branch tree with the active branch marked', async () => {
      const threadId = await twoForks('tree');
      const list = await run(mod.id, threadId, 'list');
      for (const id of ['b1', 'b2', 'b3', 'b4', 'b5']) expect(list).toContain(`**${id}**`);
      expect(list).toMatch(/▶ \*\*b4\*\* alternative A · default · from b3 · 3 turns/);
      expect(list).toMatch(/• \*\*b2\*\* alternative A · default · from b1/);
      const choices = await world.discord.autocomplete({
        channelId: threadId,
        userId: mod.id,
        name: 'branch',
        subcommand: 'switch',
        options: { branch: 'b' },
        focused: 'branch',
      });
      expect(choices.map((c) => c.value)).toEqual(['b1', 'b2', 'b3', 'b4', 'b5']);
    });

    it('switches to a losing branch, and the next reply comes from its history', async () => {
      const threadId = await twoForks('switching');
      const [firstReply] = replies(world, threadId);
      const loserOfFirstFork = alternativeTexts(threadId)[0]!;
      expect(await run(mod.id, threadId, 'switch', { branch: 'b2' })).toMatch(/Switched to b2/);
      await world.discord.waitFor(() =>
        world.discord.messages(threadId).find((m) => m.content.startsWith('🌿 Switched to b2')),
      );
      world.discord.postMessage(threadId, alice.id, 'after the switch');
      const reply = await replyTo(world, threadId, 'alice: after the switch');
      expect(reply.text).toBe(
        replyFor({
          model: MODEL,
          messages: [
            user('alice: switching'),
            assistant(firstReply!.text),
            user('alice: fork one'),
            assistant(loserOfFirstFork),
            user('alice: after the switch'),
          ],
        }),
      );
      const audit = world.discord.messages(auditChannel).at(-1)!;
      expect(audit.content).toMatch(/\*\*switch\*\* in <#\d+> by <@\d+>: Switched to b2/);
      expect(audit.pinged.users).toEqual([]);
    });

    it('resets: undoes the last fork, then starts afresh from the root', async () => {
      const threadId = await twoForks('resetting');
      expect(await run(mod.id, threadId, 'reset')).toMatch(/Reset to b3, as before the last fork/);
      world.discord.postMessage(threadId, alice.id, 'where are we?');
      expect((await replyTo(world, threadId, 'alice: where are we?')).text).toMatch(/saw 5 msgs/);
      expect(await run(mod.id, threadId, 'reset', { to: 'root' })).toMatch(/fresh start/);
      world.discord.postMessage(threadId, alice.id, 'new beginning');
      expect((await replyTo(world, threadId, 'alice: new beginning')).text).toMatch(/saw 1 msgs/);
      expect(world.discord.messages(threadId).filter((m) => m.content.startsWith('🌿 Reset'))).toHaveLength(
        2,
      );
    });

    it('prunes inactive branches after a confirmation, deleting their conversations', async () => {
      const threadId = await twoForks('pruning');
      await run(mod.id, threadId, 'switch', { branch: 'b5' });
      world.discord.postMessage(threadId, alice.id, 'on b5');
      await replyTo(world, threadId, 'alice: on b5');
      await run(mod.id, threadId, 'switch', { branch: 'b4' });
      const conversationsBefore = world.openai.conversationIds().length;
      const confirm = await world.discord
        .runCommand({ channelId: threadId, userId: mod.id, name: 'branch', subcommand: 'prune' })
        .response();
      expect(confirm.content).toMatch(/Delete 2 inactive branches \(b2, b5\)/);
      await click(world, confirm, 'Delete', mod.id);
      await world.discord.waitFor(() =>
        world.discord.messages(threadId).find((m) => m.content.startsWith('🌿 Pruned 2')),
      );
      const list = await run(mod.id, threadId, 'list');
      expect(list).not.toContain('**b2**');
      expect(list).not.toContain('**b5**');
      if (backend === 'conversations')
        expect(world.openai.conversationIds().length).toBe(conversationsBefore - 1);
    });

    it('refuses members without Manage Threads or a moderator role, and allows the role', async () => {
      const threadId = await twoForks('permissions');
      // Discord hides /branch from them; a server admin can show it anyway, and then the bot itself refuses.
      await expect(run(alice.id, threadId, 'list')).rejects.toThrow(/not available/);
      world.discord.allowCommand('branch', alice.id);
      world.discord.allowCommand('branch', roleMod.id);
      for (const [sub, options] of [
        ['list', {}],
        ['switch', { branch: 'b2' }],
        ['reset', {}],
        ['prune', {}],
      ] as const) {
        expect(await run(alice.id, threadId, sub, options)).toMatch(/Only moderators/);
      }
      expect(await run(alice.id, threadId, 'reset', { to: 'root' })).toMatch(/Only moderators/);
      expect(await run(roleMod.id, threadId, 'switch', { branch: 'b2' })).toMatch(/Switched to b2/);
      expect(await run(roleMod.id, threadId, 'switch', { branch: 'b99' })).toMatch(/no branch b99/);
      const registered = (
        world.discord.commands(world.discord.guildId) as {
          name: string;
          default_member_permissions?: string;
        }[]
      ).find((c) => c.name === 'branch');
      expect(registered?.default_member_permissions).toBe(String(1n << 34n));
    });

    it('cancels an open vote when a moderator switches, and waits for a running reply', async () => {
      const threadId = await startThread(world, alice.id, 'busy thread');
      await command(world, { channelId: threadId, userId: mod.id, name: 'settings', options: { quorum: 5 } });
      const ballot = await openVote(world, threadId, alice.id, { count: 2, prompt: 'fork' });
      await run(mod.id, threadId, 'switch', { branch: 'b2' });
      const cancelled = await waitForBallot(
        world,
        threadId,
        (m) => m.id === ballot.id && m.content.includes('cancelled'),
      );
      expect(buttonIds(cancelled).every((b) => b.disabled)).toBe(true);

      world.openai.setLatency({ firstTokenMs: 400 });
      try {
        world.discord.postMessage(threadId, alice.id, 'slow one');
        await world.discord.waitFor(() =>
          world.openai.requests.some((r) => String(JSON.stringify(r.body)).includes('slow one')),
        );
        expect(await run(mod.id, threadId, 'switch', { branch: 'b3' })).toMatch(/Switched to b3/);
        // The switch waited: the reply to the running turn came before the notice.
        const messages = world.discord.messages(threadId);
        const replyIndex = messages.findIndex((m) => m.content.includes('"alice: slow one'));
        const noticeIndex = messages.findIndex((m) => m.content.startsWith('🌿 Switched to b3'));
        expect(replyIndex).toBeGreaterThan(-1);
        expect(noticeIndex).toBeGreaterThan(replyIndex);
      } finally {
        world.openai.setLatency({ firstTokenMs: 0 });
      }
      expect(bot.logs.filter((l) => l.level >= 50)).toEqual([]);
    });
  });
}
