import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BotProcess,
  buttonIds,
  click,
  createWorld,
  openVote,
  startThread,
  type World,
  waitForReplies,
} from './harness.ts';

/**
 * Issue 14, "Discord's limits in every path": oversized input never makes the bot send what Discord refuses. The
 * Discord emulator refuses what Discord refuses (content 2000, embed description 4096 and 6000 in all, button label
 * 80, autocomplete name 100, thread name 100), so each test checks that the person sees a cut text instead.
 */
describe("Discord's limits with oversized input", () => {
  let world: World;
  let bot: BotProcess;
  let alice: { id: string };
  let mod: { id: string };

  beforeAll(async () => {
    world = await createWorld();
    bot = await world.startBot({ ALTERNATIVES_COOLDOWN_SECONDS: '0', STYLE_MAX_LENGTH: '1000' });
    alice = world.discord.createUser({ username: 'alice' });
    mod = world.discord.createUser({ username: 'mod', manageThreads: true });
  });
  afterAll(() => world.close());

  /** No request of the bot was refused by the emulator for a limit (400, code 50035). */
  function refusedRequests() {
    return world.discord.requests.filter((r) => r.status === 400);
  }

  it('shows /settings with 4,000 characters of instructions, cut visibly, and again afterwards', async () => {
    const threadId = await startThread(world, alice.id, 'settings limits');
    const instructions = `${'Answer like a patient teacher. '.repeat(129)}END`.slice(0, 4000);
    const changed = await world.discord
      .runCommand({ channelId: threadId, userId: mod.id, name: 'settings', options: { instructions } })
      .response();
    const embed = changed.embeds[0] as { title: string; description: string };
    expect(embed.title).toBe('Thread settings updated');
    expect(embed.description.length).toBeLessThanOrEqual(4096);
    expect(embed.description).toContain('Answer like a patient teacher.');
    expect(embed.description).toContain('…');
    expect(embed.description).toContain('4000 characters; the model gets them all');
    expect(embed.description).not.toContain('END');

    const shown = await world.discord
      .runCommand({ channelId: threadId, userId: alice.id, name: 'settings' })
      .response();
    expect((shown.embeds[0] as { description: string }).description).toBe(embed.description);
    expect(refusedRequests()).toEqual([]);
  });

  it('repeats a 5,000-character branch id in its error only as a short cut', async () => {
    const threadId = await startThread(world, alice.id, 'long branch id');
    const seen = await world.discord
      .runCommand({
        channelId: threadId,
        userId: mod.id,
        name: 'branch',
        subcommand: 'switch',
        options: { branch: 'x'.repeat(5000) },
      })
      .response();
    expect(seen.ephemeral).toBe(true);
    expect(seen.content).toMatch(/^⚠️ There is no branch x{39}… in this thread/);
    expect(seen.content.length).toBeLessThanOrEqual(2000);
    expect(refusedRequests()).toEqual([]);
  });

  it('cuts long styles in button labels (≤ 80) and autocomplete names (≤ 100)', async () => {
    const threadId = await startThread(world, alice.id, 'long styles');
    const style = 'answer in the voice of a very long-winded Victorian novelist '.repeat(15).trim();
    const ballot = await openVote(world, threadId, alice.id, {
      count: 2,
      prompt: 'go on',
      styles: `${style} | terse`,
    });
    const menu = await click(world, ballot, 'Moderator pick', mod.id);
    const labels = buttonIds(menu).map((b) => b.label);
    expect(labels).toHaveLength(2);
    expect(labels[0]!.length).toBeLessThanOrEqual(80);
    expect(labels[0]).toMatch(/^A · answer in the voice of .*…$/);
    expect(labels[1]).toBe('B · terse');

    const choices = await world.discord.autocomplete({
      channelId: threadId,
      userId: mod.id,
      name: 'branch',
      subcommand: 'switch',
      options: { branch: '' },
      focused: 'branch',
    });
    const long = choices.find((c) => c.name.includes('Victorian'));
    expect(long?.name.length).toBeLessThanOrEqual(100);
    expect(long?.name).toMatch(/…$/);
    // The alternative itself was streamed with its long header, split within 2000 characters a message.
    for (const m of world.discord.messages(threadId)) expect(m.content.length).toBeLessThanOrEqual(2000);
    expect(refusedRequests()).toEqual([]);
  });

  it('names a thread started by a 3,000-character mention with a cut first line', async () => {
    const { discord } = world;
    const before = new Set(discord.threadsOf(discord.channelId).map((t) => t.id));
    const text = 'Please read this very long question carefully. '.repeat(64);
    discord.postMessage(discord.channelId, alice.id, `<@${discord.botUserId}> ${text}`);
    const thread = await discord.waitFor(() =>
      discord.threadsOf(discord.channelId).find((t) => !before.has(t.id)),
    );
    expect(thread.name.length).toBeLessThanOrEqual(100);
    expect(thread.name).toMatch(/^Please read this very long question carefully\. .*…$/);
    await waitForReplies(world, thread.id, 1);
    expect(refusedRequests()).toEqual([]);
    expect(bot.logs.filter((l) => l.level >= 50)).toEqual([]);
  });
});
