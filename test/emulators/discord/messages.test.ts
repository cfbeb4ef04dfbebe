import {
  ActionRowBuilder,
  ButtonBuilder,
  ButtonStyle,
  ChannelType,
  ContainerBuilder,
  DiscordAPIError,
  Events,
  MessageFlags,
  type TextChannel,
  TextDisplayBuilder,
  type ThreadChannel,
} from 'discord.js';
import { afterEach, describe, expect, it } from 'vitest';
import { once, start, stopAll } from './harness.ts';

afterEach(stopAll);

function textChannel(client: import('discord.js').Client, id: string): TextChannel {
  const ch = client.channels.cache.get(id);
  if (!ch || ch.type !== ChannelType.GuildText) throw new Error(`no text channel ${id}`);
  return ch;
}

async function apiError(p: Promise<unknown>): Promise<DiscordAPIError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof DiscordAPIError) return err;
    throw err;
  }
  throw new Error('expected a DiscordAPIError');
}

describe('discord emulator: messages', () => {
  it('sees messages the client sends and edits, and dispatches them back', async () => {
    const { emu, client } = await start();
    const ch = textChannel(client, emu.channelId);
    const echoed = once(client, Events.MessageCreate, (m) => m.author.id === emu.botUserId);
    const sent = await ch.send('first draft');
    const [echo] = await echoed;
    expect(echo.id).toBe(sent.id);
    const updated = once(client, Events.MessageUpdate);
    await sent.edit('final text');
    await updated;
    const view = await emu.waitFor(() => emu.message(sent.id));
    expect(view).toMatchObject({ content: 'final text', authorId: emu.botUserId, editCount: 1 });
    expect(emu.messages(emu.channelId).map((m) => m.content)).toEqual(['final text']);
    await sent.delete();
    expect(emu.messages(emu.channelId)).toEqual([]);
  });

  it('replies with message_reference and pings the replied user by default', async () => {
    const { emu, client } = await start();
    const alice = emu.createUser({ username: 'alice' });
    const got = once(client, Events.MessageCreate);
    emu.postMessage(emu.channelId, alice.id, 'question');
    const [question] = await got;
    const answer = await question.reply('answer');
    const view = emu.message(answer.id);
    expect(view?.referenceId).toBe(question.id);
    expect(view?.pinged.users).toEqual([alice.id]);
    const quiet = await question.reply({ content: 'quiet', allowedMentions: { repliedUser: false } });
    expect(emu.message(quiet.id)?.pinged.users).toEqual([]);
  });

  it('honours allowed_mentions: {parse: []} pings nobody, absent pings everything written', async () => {
    const { emu, client } = await start();
    const alice = emu.createUser({ username: 'alice' });
    const role = emu.createRole({ name: 'helpers' });
    const ch = textChannel(client, emu.channelId);
    const text = `<@${alice.id}> <@&${role}> @everyone`;
    const loud = await ch.send(text);
    expect(emu.message(loud.id)?.pinged).toEqual({ users: [alice.id], roles: [role], everyone: true });
    const silent = await ch.send({ content: text, allowedMentions: { parse: [] } });
    expect(emu.message(silent.id)?.pinged).toEqual({ users: [], roles: [], everyone: false });
    const some = await ch.send({ content: text, allowedMentions: { users: [alice.id] } });
    expect(emu.message(some.id)?.pinged).toEqual({ users: [alice.id], roles: [], everyone: false });
  });

  it('rejects content over 2000 characters with 50035', async () => {
    const { emu, client } = await start();
    const err = await apiError(textChannel(client, emu.channelId).send('x'.repeat(2001)));
    expect(err.code).toBe(50035);
    expect(err.status).toBe(400);
    expect(JSON.stringify(err.rawError)).toContain('BASE_TYPE_MAX_LENGTH');
    await textChannel(client, emu.channelId).send('x'.repeat(2000));
  });

  it('rejects duplicate custom_ids, six buttons in a row and too many embeds', async () => {
    const { emu, client } = await start();
    const ch = textChannel(client, emu.channelId);
    const button = (id: string) =>
      new ButtonBuilder().setCustomId(id).setLabel(id).setStyle(ButtonStyle.Primary);
    const dup = await apiError(
      ch.send({
        content: 'vote',
        components: [new ActionRowBuilder<ButtonBuilder>().addComponents(button('a'), button('a'))],
      }),
    );
    expect(dup.code).toBe(50035);
    expect(JSON.stringify(dup.rawError)).toContain('COMPONENT_CUSTOM_ID_DUPLICATED');
    const wide = await apiError(
      ch.send({
        content: 'wide',
        components: [
          new ActionRowBuilder<ButtonBuilder>().addComponents(
            ['1', '2', '3', '4', '5', '6'].map((i) => button(i)),
          ),
        ],
      }),
    );
    expect(wide.code).toBe(50035);
    const embeds = await apiError(
      ch.send({ embeds: [{ description: 'd'.repeat(4000) }, { description: 'e'.repeat(2100) }] }),
    );
    expect(embeds.code).toBe(50035);
    expect(JSON.stringify(embeds.rawError)).toContain('MAX_EMBED_SIZE_EXCEEDED');
    const empty = await apiError(ch.send({ content: '' }));
    expect(empty.code).toBe(50006);
  });

  it('starts threads from a message and without one', async () => {
    const { emu, client } = await start();
    const ch = textChannel(client, emu.channelId);
    const alice = emu.createUser({ username: 'alice' });
    const got = once(client, Events.MessageCreate);
    emu.postMessage(emu.channelId, alice.id, 'start here');
    const [starter] = await got;
    const fromMessage = await starter.startThread({ name: 'from message' });
    expect(fromMessage.id).toBe(starter.id);
    expect(fromMessage.type).toBe(ChannelType.PublicThread);
    const plain = await ch.threads.create({ name: 'plain thread' });
    expect(plain.type).toBe(ChannelType.PublicThread);
    expect(plain.ownerId).toBe(emu.botUserId);
    const threads = emu.threadsOf(emu.channelId);
    expect(threads.map((t) => t.name).sort()).toEqual(['from message', 'plain thread']);
    expect(threads.every((t) => t.memberIds.includes(emu.botUserId))).toBe(true);
    await plain.send('inside');
    expect(emu.messages(plain.id).map((m) => m.content)).toEqual(['inside']);
    const again = await apiError(starter.startThread({ name: 'twice' }));
    expect(again.code).toBe(160004);
  });

  it('refuses messages to archived (50083) and locked (50013) threads', async () => {
    const { emu, client } = await start();
    const alice = emu.createUser({ username: 'alice' });
    const created = once(client, Events.ThreadCreate, (t) => t.name === 'closed');
    const archivedId = emu.createThread({ parentId: emu.channelId, name: 'old', ownerId: alice.id });
    const lockedId = emu.createThread({ parentId: emu.channelId, name: 'closed', ownerId: alice.id });
    await created;
    emu.archiveThread(archivedId);
    const lockedThread = client.channels.cache.get(lockedId) as ThreadChannel;
    const updated = once(client, Events.ThreadUpdate, (_old, t) => t.id === lockedId);
    emu.archiveThread(lockedId, { locked: true });
    await updated;
    const archivedErr = await apiError(
      (client.channels.cache.get(archivedId) as ThreadChannel).send('hello?'),
    );
    expect(archivedErr.code).toBe(50083);
    expect(archivedErr.status).toBe(400);
    const lockedErr = await apiError(lockedThread.send('hello?'));
    expect(lockedErr.code).toBe(50013);
    expect(lockedErr.status).toBe(403);
    // The bot owns neither thread and has no MANAGE_THREADS: it may not lock one either.
    const lockErr = await apiError(lockedThread.setLocked(false));
    expect(lockErr.code).toBe(50013);
  });

  it('refuses the bot in a thread locked without archiving (50013), and lets it back in once unlocked', async () => {
    const { emu, client } = await start();
    const alice = emu.createUser({ username: 'alice' });
    const created = once(client, Events.ThreadCreate, (t) => t.name === 'locked open');
    const threadId = emu.createThread({ parentId: emu.channelId, name: 'locked open', ownerId: alice.id });
    await created;
    const thread = client.channels.cache.get(threadId) as ThreadChannel;
    let updated = once(client, Events.ThreadUpdate, (_old, t) => t.id === threadId);
    emu.lockThread(threadId);
    await updated;
    expect(emu.channel(threadId)).toMatchObject({ archived: false, locked: true });
    expect(thread.locked).toBe(true);
    const lockedErr = await apiError(thread.send('hello?'));
    expect(lockedErr.code).toBe(50013);
    expect(() => emu.postMessage(threadId, alice.id, 'me too?')).toThrow(/locked/);
    // Archived as well, then reopened by a moderator: still locked until unlocked.
    emu.archiveThread(threadId);
    emu.unarchiveThread(threadId);
    expect(emu.channel(threadId)).toMatchObject({ archived: false, locked: true });
    updated = once(client, Events.ThreadUpdate, (_old, t) => t.id === threadId && !t.locked);
    emu.lockThread(threadId, false);
    await updated;
    await thread.send('back');
    expect(emu.messages(threadId).map((m) => m.content)).toEqual(['back']);
  });

  it('lets the thread owner archive and unarchive its own thread', async () => {
    const { emu, client } = await start();
    const thread = await textChannel(client, emu.channelId).threads.create({ name: 'mine' });
    await thread.setArchived(true);
    expect(emu.channel(thread.id)?.archived).toBe(true);
    await thread.setArchived(false);
    await thread.send('back');
    expect(emu.messages(thread.id).map((m) => m.content)).toEqual(['back']);
  });

  it('accepts files (multipart) and serves them back', async () => {
    const { emu, client } = await start();
    const sent = await textChannel(client, emu.channelId).send({
      content: 'long reply attached',
      files: [{ attachment: Buffer.from('the whole reply'), name: 'reply.md' }],
    });
    expect(sent.attachments.first()?.name).toBe('reply.md');
    const view = emu.message(sent.id);
    expect(view?.attachments.map((a) => a.filename)).toEqual(['reply.md']);
    const res = await fetch(view?.attachments[0]?.url ?? '');
    expect(await res.text()).toBe('the whole reply');
    const body = emu.requests.at(-1)?.body as { files?: { filename: string }[] };
    expect(body.files?.[0]?.filename).toBe('reply.md');
  });

  it('lists messages newest first with limit and before', async () => {
    const { emu, client } = await start();
    const alice = emu.createUser({ username: 'alice' });
    const ids = ['one', 'two', 'three', 'four'].map((c) => emu.postMessage(emu.channelId, alice.id, c).id);
    const ch = textChannel(client, emu.channelId);
    const page = await ch.messages.fetch({ limit: 2 });
    expect([...page.values()].map((m) => m.content)).toEqual(['four', 'three']);
    const older = await ch.messages.fetch({ limit: 10, before: ids[2] ?? '' });
    expect([...older.values()].map((m) => m.content)).toEqual(['two', 'one']);
    const one = await ch.messages.fetch(ids[1] ?? '');
    expect(one.content).toBe('two');
  });

  describe('components v2', () => {
    const text = (content: string) => new TextDisplayBuilder().setContent(content);
    const voteRow = (id: string) =>
      new ActionRowBuilder<ButtonBuilder>().addComponents(
        new ButtonBuilder().setCustomId(id).setLabel('A').setStyle(ButtonStyle.Primary),
      );

    it('keeps containers, text displays and buttons, shows their text, and lets people click them', async () => {
      const { emu, client } = await start();
      const alice = emu.createUser({ username: 'alice' });
      const ch = textChannel(client, emu.channelId);
      const sent = await ch.send({
        flags: MessageFlags.IsComponentsV2,
        components: [
          text('headline'),
          new ContainerBuilder()
            .addTextDisplayComponents(text('**A**\nfirst'))
            .addActionRowComponents(voteRow('v:a')),
        ],
      });
      const view = emu.message(sent.id)!;
      expect(view.content).toBe('');
      expect(view.text).toBe('headline\n**A**\nfirst');
      expect(view.flags & MessageFlags.IsComponentsV2).toBeTruthy();
      const clicked = once(client, Events.InteractionCreate);
      emu.clickButton({ messageId: sent.id, customId: 'v:a', userId: alice.id });
      const [interaction] = await clicked;
      expect(interaction.isButton() && interaction.customId).toBe('v:a');
      // An edit without the flag is still a v2 message: its text displays replace the old ones.
      await ch.messages.edit(sent.id, { components: [text('edited')] });
      expect(emu.message(sent.id)?.text).toBe('edited');
    });

    it('refuses content and embeds with the flag, on create and on edit, as Discord does', async () => {
      const { emu, client } = await start();
      const ch = textChannel(client, emu.channelId);
      const withContent = await apiError(
        ch.send({ content: 'legacy', flags: MessageFlags.IsComponentsV2, components: [text('x')] }),
      );
      expect(withContent.status).toBe(400);
      expect(withContent.code).toBe(50035);
      expect(JSON.stringify(withContent.rawError)).toContain(
        'MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2',
      );
      const sent = await ch.send({ flags: MessageFlags.IsComponentsV2, components: [text('x')] });
      const editedContent = await apiError(ch.messages.edit(sent.id, { content: 'legacy' }));
      expect(editedContent.code).toBe(50035);
      const embeds = await apiError(ch.messages.edit(sent.id, { embeds: [{ description: 'legacy' }] }));
      expect(embeds.code).toBe(50035);
      const unflag = await apiError(
        ch.messages.edit(sent.id, { flags: MessageFlags.SuppressEmbeds, components: [text('y')] }),
      );
      expect(JSON.stringify(unflag.rawError)).toContain('MESSAGE_CANNOT_REMOVE_COMPONENTS_V2_FLAG');
      expect(emu.message(sent.id)?.text).toBe('x');
    });

    it('allows 4000 characters of text displays and 40 components in all, nested ones counted', async () => {
      const { emu, client } = await start();
      const ch = textChannel(client, emu.channelId);
      const full = await ch.send({
        flags: MessageFlags.IsComponentsV2,
        components: [
          text('a'.repeat(2000)),
          new ContainerBuilder().addTextDisplayComponents(text('b'.repeat(2000))),
        ],
      });
      expect(emu.message(full.id)?.text.length).toBe(4001);
      const tooLong = await apiError(
        ch.messages.edit(full.id, { components: [text('a'.repeat(2000)), text('b'.repeat(2001))] }),
      );
      expect(tooLong.status).toBe(400);
      expect(JSON.stringify(tooLong.rawError)).toContain('MAX_TEXT_DISPLAY_CONTENT_LENGTH_EXCEEDED');
      // 8 containers of 4 (container, text display, row, button) = 32, plus 8 text displays = 40: allowed.
      const box = (i: number) =>
        new ContainerBuilder()
          .addTextDisplayComponents(text(`${i}`))
          .addActionRowComponents(voteRow(`v:${i}`));
      const forty = [
        ...Array.from({ length: 8 }, (_, i) => box(i)),
        ...Array.from({ length: 8 }, (_, i) => text(`t${i}`)),
      ];
      await ch.messages.edit(full.id, { components: forty });
      const tooMany = await apiError(ch.messages.edit(full.id, { components: [...forty, text('one more')] }));
      expect(tooMany.status).toBe(400);
      expect(tooMany.code).toBe(50035);
    });

    it('pings from text displays only as allowed_mentions allow', async () => {
      const { emu, client } = await start();
      const alice = emu.createUser({ username: 'alice' });
      const ch = textChannel(client, emu.channelId);
      const loud = await ch.send({
        flags: MessageFlags.IsComponentsV2,
        components: [text(`hi <@${alice.id}>`)],
      });
      expect(emu.message(loud.id)?.pinged.users).toEqual([alice.id]);
      const quiet = await ch.send({
        flags: MessageFlags.IsComponentsV2,
        components: [text(`hi <@${alice.id}>`)],
        allowedMentions: { parse: [] },
      });
      expect(emu.message(quiet.id)?.pinged.users).toEqual([]);
    });
  });
});
