import {
  ActionRowBuilder,
  ButtonBuilder,
  ButtonStyle,
  ChannelType,
  type ChatInputCommandInteraction,
  DiscordAPIError,
  Events,
  type Interaction,
  MessageFlags,
  SlashCommandBuilder,
} from 'discord.js';
import { afterEach, describe, expect, it } from 'vitest';
import { once, start, stopAll } from './harness.ts';

afterEach(stopAll);

async function apiError(p: Promise<unknown>): Promise<DiscordAPIError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof DiscordAPIError) return err;
    throw err;
  }
  throw new Error('expected a DiscordAPIError');
}

const forkCommand = new SlashCommandBuilder()
  .setName('alternatives')
  .setDescription('Fork the conversation')
  .addIntegerOption((o) => o.setName('count').setDescription('How many').setRequired(true))
  .addStringOption((o) => o.setName('style').setDescription('Style').setAutocomplete(true));

describe('discord emulator: interactions', () => {
  it('registers commands and types options from the definition; deferReply then editReply', async () => {
    const { emu, client } = await start();
    await client.application?.commands.set([forkCommand.toJSON()], emu.guildId);
    expect(emu.commands(emu.guildId)).toMatchObject([{ name: 'alternatives', guild_id: emu.guildId }]);
    const alice = emu.createUser({ username: 'alice' });
    const seen: { count: number | null; style: string | null }[] = [];
    client.on(Events.InteractionCreate, async (i: Interaction) => {
      if (!i.isChatInputCommand()) return;
      seen.push({ count: i.options.getInteger('count'), style: i.options.getString('style') });
      await i.deferReply();
      await i.editReply(`making ${i.options.getInteger('count')} alternatives`);
    });
    const handle = emu.runCommand({
      channelId: emu.channelId,
      userId: alice.id,
      name: 'alternatives',
      options: { count: 3, style: 'terse' },
    });
    expect(await handle.acked()).toEqual({ type: 5 });
    const response = await handle.response();
    expect(response.content).toBe('making 3 alternatives');
    expect(response.ephemeral).toBe(false);
    expect(response.interactionId).toBe(handle.id);
    expect(seen).toEqual([{ count: 3, style: 'terse' }]);
    expect(emu.messages(emu.channelId).map((m) => m.content)).toEqual(['making 3 alternatives']);
    expect(emu.requests.find((r) => r.route.startsWith('POST /interactions'))?.status).toBe(204);
  });

  it('replies ephemerally, follows up, and reports the interaction channel with its type', async () => {
    const { emu, client } = await start();
    const alice = emu.createUser({ username: 'alice' });
    const threadId = emu.createThread({ parentId: emu.channelId, name: 'talk', ownerId: alice.id });
    let channelType: ChannelType | undefined;
    let parentId: string | null | undefined;
    client.on(Events.InteractionCreate, async (i: Interaction) => {
      if (!i.isChatInputCommand()) return;
      channelType = i.channel?.type;
      parentId = i.channel?.isThread() ? i.channel.parentId : undefined;
      await i.reply({ content: 'only you', flags: MessageFlags.Ephemeral });
      await i.followUp({ content: 'everyone sees this' });
    });
    const handle = emu.runCommand({ channelId: threadId, userId: alice.id, name: 'status' });
    const response = await handle.response();
    expect(response).toMatchObject({ content: 'only you', ephemeral: true, visibleTo: alice.id });
    await emu.waitFor(() => handle.followups().length === 1);
    expect(handle.followups()[0]).toMatchObject({ content: 'everyone sees this', ephemeral: false });
    expect(channelType).toBe(ChannelType.PublicThread);
    expect(parentId).toBe(emu.channelId);
  });

  it('clicks a button and sees the update() of its message', async () => {
    const { emu, client } = await start();
    const alice = emu.createUser({ username: 'alice' });
    const ch = client.channels.cache.get(emu.channelId);
    if (ch?.type !== ChannelType.GuildText) throw new Error('no channel');
    const vote = await ch.send({
      content: 'Pick one',
      components: [
        new ActionRowBuilder<ButtonBuilder>().addComponents(
          new ButtonBuilder().setCustomId('vote:a').setLabel('A').setStyle(ButtonStyle.Primary),
          new ButtonBuilder().setCustomId('vote:b').setLabel('B').setStyle(ButtonStyle.Secondary),
        ),
      ],
    });
    client.on(Events.InteractionCreate, async (i: Interaction) => {
      if (!i.isButton()) return;
      await i.update({ content: `${i.user.username} picked ${i.customId}`, components: [] });
    });
    const handle = emu.clickButton({ messageId: vote.id, customId: 'vote:b', userId: alice.id });
    expect(await handle.acked()).toEqual({ type: 7 });
    const updated = await handle.response();
    expect(updated.id).toBe(vote.id);
    expect(updated.content).toBe('alice picked vote:b');
    expect(updated.components).toEqual([]);
  });

  it('defers a button with deferUpdate and edits the message through @original', async () => {
    const { emu, client } = await start();
    const alice = emu.createUser({ username: 'alice' });
    const ch = client.channels.cache.get(emu.channelId);
    if (ch?.type !== ChannelType.GuildText) throw new Error('no channel');
    const msg = await ch.send({
      content: 'Slow',
      components: [
        new ActionRowBuilder<ButtonBuilder>().addComponents(
          new ButtonBuilder().setCustomId('go').setLabel('Go').setStyle(ButtonStyle.Primary),
        ),
      ],
    });
    client.on(Events.InteractionCreate, async (i: Interaction) => {
      if (!i.isButton()) return;
      await i.deferUpdate();
      await i.editReply({ content: 'done' });
    });
    const handle = emu.clickButton({ messageId: msg.id, customId: 'go', userId: alice.id });
    const response = await handle.response();
    expect(response).toMatchObject({ id: msg.id, content: 'done' });
  });

  it('passes subcommands and resolved user options; edits and deletes follow-ups', async () => {
    const { emu, client } = await start();
    const branches = new SlashCommandBuilder()
      .setName('branches')
      .setDescription('Branches')
      .addSubcommand((s) =>
        s
          .setName('switch')
          .setDescription('Switch')
          .addStringOption((o) => o.setName('id').setDescription('Branch').setRequired(true))
          .addUserOption((o) => o.setName('for').setDescription('Who')),
      );
    await client.application?.commands.set([branches.toJSON()]);
    const alice = emu.createUser({ username: 'alice', manageThreads: true });
    const bob = emu.createUser({ username: 'bob' });
    client.on(Events.InteractionCreate, async (i: Interaction) => {
      if (!i.isChatInputCommand()) return;
      const who = i.options.getUser('for');
      await i.deferReply({ flags: MessageFlags.Ephemeral });
      await i.followUp(`${i.options.getSubcommand()} ${i.options.getString('id')} for ${who?.username}`);
      const extra = await i.followUp({ content: 'temporary', flags: MessageFlags.Ephemeral });
      await i.webhook.editMessage(extra, { content: 'edited follow-up' });
      const fetched = await i.fetchReply();
      await i.editReply(
        `${fetched.content} (checked, moderator: ${i.memberPermissions?.has('ManageThreads')})`,
      );
    });
    const handle = emu.runCommand({
      channelId: emu.channelId,
      userId: alice.id,
      name: 'branches',
      subcommand: 'switch',
      options: { id: 'b2', for: bob.id },
    });
    const response = await handle.response();
    expect(response).toMatchObject({ content: 'switch b2 for bob', ephemeral: true, visibleTo: alice.id });
    await emu.waitFor(() => handle.followups()[0]?.content === 'edited follow-up');
    await emu.waitFor(() => emu.message(response.id)?.content.endsWith('(checked, moderator: true)'));
    expect(() =>
      emu.runCommand({ channelId: emu.channelId, userId: alice.id, name: 'branches', options: { id: 'x' } }),
    ).toThrow(/needs a subcommand/);
  });

  it('answers autocomplete with choices', async () => {
    const { emu, client } = await start();
    await client.application?.commands.set([forkCommand.toJSON()]);
    const alice = emu.createUser({ username: 'alice' });
    client.on(Events.InteractionCreate, async (i: Interaction) => {
      if (!i.isAutocomplete()) return;
      const typed = String(i.options.getFocused());
      await i.respond(
        ['terse', 'teacher', 'poet'].filter((s) => s.startsWith(typed)).map((s) => ({ name: s, value: s })),
      );
    });
    const choices = await emu.autocomplete({
      channelId: emu.channelId,
      userId: alice.id,
      name: 'alternatives',
      options: { count: 2, style: 'te' },
      focused: 'style',
    });
    expect(choices).toEqual([
      { name: 'terse', value: 'terse' },
      { name: 'teacher', value: 'teacher' },
    ]);
  });

  it('refuses a late acknowledgement with 10062 and a second one with 40060', async () => {
    const { emu, client } = await start({ interactionAckMs: 150 });
    const alice = emu.createUser({ username: 'alice' });
    const late = emu.runCommand({ channelId: emu.channelId, userId: alice.id, name: 'slow' });
    const [interaction] = await once(client, Events.InteractionCreate);
    await emu.waitFor(() => late.error());
    const err = await apiError((interaction as ChatInputCommandInteraction).reply('too late'));
    expect(err.code).toBe(10062);
    expect(late.error()).toEqual({ code: 10062, message: 'Unknown interaction' });
    await expect(late.acked()).rejects.toThrow(/not acknowledged/);

    const twice = emu.runCommand({ channelId: emu.channelId, userId: alice.id, name: 'twice' });
    const [second] = await once(client, Events.InteractionCreate, (i) => i.id === twice.id);
    const cmd = second as ChatInputCommandInteraction;
    await cmd.reply('once');
    // discord.js refuses a second reply itself; go around it to see Discord's answer.
    const res = await fetch(`${emu.apiUrl}/v10/interactions/${twice.id}/${twice.token}/callback`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ type: 4, data: { content: 'twice' } }),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({
      code: 40060,
      message: 'Interaction has already been acknowledged.',
    });
  });

  it('returns the callback resource with with_response=true', async () => {
    const { emu, client } = await start();
    const alice = emu.createUser({ username: 'alice' });
    let messageId: string | undefined;
    client.on(Events.InteractionCreate, async (i: Interaction) => {
      if (!i.isChatInputCommand()) return;
      const res = await i.reply({ content: 'hi', withResponse: true });
      messageId = res.resource?.message?.id;
    });
    const handle = emu.runCommand({ channelId: emu.channelId, userId: alice.id, name: 'hello' });
    const response = await handle.response();
    await emu.waitFor(() => messageId);
    expect(messageId).toBe(response.id);
  });

  it('rejects webhook calls after the token expired with 50027', async () => {
    const { emu, client } = await start({ interactionTokenTtlMs: 100 });
    const alice = emu.createUser({ username: 'alice' });
    const handle = emu.runCommand({ channelId: emu.channelId, userId: alice.id, name: 'long' });
    const [interaction] = await once(client, Events.InteractionCreate);
    const cmd = interaction as ChatInputCommandInteraction;
    await cmd.deferReply();
    const deadline = Date.now() + 100;
    await emu.waitFor(() => Date.now() > deadline);
    const err = await apiError(cmd.editReply('finally'));
    expect(err.code).toBe(50027);
    expect(err.status).toBe(401);
    expect(await handle.acked()).toEqual({ type: 5 });
  });
});
