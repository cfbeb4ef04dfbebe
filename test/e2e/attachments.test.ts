import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BotProcess, createWorld, startThread, type World, waitForReplies } from './harness.ts';

/**
 * Issue 14, "Abuse limits": attachments are downloaded only for managed threads, within a timeout and a size cap,
 * and only when Discord's CDN answers 200; a failed download is named in what the model sees, and the message is
 * answered anyway.
 */
describe('attachments', () => {
  let world: World;
  let bot: BotProcess;
  let alice: { id: string };

  beforeAll(async () => {
    world = await createWorld();
    bot = await world.startBot({ ATTACHMENT_TIMEOUT_SECONDS: '1' });
    alice = world.discord.createUser({ username: 'alice' });
  });
  afterAll(() => world.close());

  /** The body of the one request to the model that carries `needle`. */
  async function modelInputWith(needle: string): Promise<string> {
    const found = await world.discord.waitFor(() =>
      world.openai.requests.find((r) => JSON.stringify(r.body).includes(needle)),
    );
    return JSON.stringify(found.body);
  }

  const notes = (filename: string, extra: object = {}) => ({
    filename,
    content: 'the secret ingredient is cardamom',
    contentType: 'text/plain',
    ...extra,
  });

  it('downloads nothing for a message outside its threads, in a channel or an unmanaged thread', async () => {
    const { discord } = world;
    const plainThread = discord.createThread({
      parentId: discord.channelId,
      name: 'people only',
      ownerId: alice.id,
    });
    discord.postMessage(discord.channelId, alice.id, 'just chatting', {
      attachments: [notes('channel.txt')],
    });
    discord.postMessage(plainThread, alice.id, 'still chatting', { attachments: [notes('thread.txt')] });
    // A managed thread's message posted after both: once it is answered, the two before it were looked at.
    const threadId = await startThread(world, alice.id, 'a managed thread');
    discord.postMessage(threadId, alice.id, 'read this', { attachments: [notes('managed.txt')] });
    await waitForReplies(world, threadId, 2);
    expect(discord.attachmentDownloads.map((d) => d.filename)).toEqual(['managed.txt']);
    expect(await modelInputWith('read this')).toMatch(/\[attachment managed\.txt\]\\nthe secret ingredient/);
  });

  it('names a 404, a slow and an oversized attachment in the input, and answers the message', async () => {
    const { discord } = world;
    const threadId = await startThread(world, alice.id, 'failing attachments');
    const downloadsBefore = discord.attachmentDownloads.length;
    const startedAt = Date.now();
    discord.postMessage(threadId, alice.id, 'three bad files', {
      attachments: [
        notes('gone.txt', { serve: { status: 404 } }),
        notes('slow.txt', { serve: { delayMs: 5000 } }),
        { filename: 'huge.txt', content: 'x'.repeat(200_000), contentType: 'text/plain' },
      ],
    });
    await waitForReplies(world, threadId, 2);
    // The slow one was given up after the 1 s timeout, not waited for.
    expect(Date.now() - startedAt).toBeLessThan(4000);
    const input = await modelInputWith('three bad files');
    expect(input).toContain('[attachment gone.txt: could not be downloaded (HTTP 404)]');
    expect(input).toContain('[attachment slow.txt: could not be downloaded (no answer within 1 s)]');
    expect(input).toContain('[attachment huge.txt: not read, larger than 100 kB]');
    expect(input).not.toContain('xxxxxxxxxx');
    // The oversized one was refused by its size, without a download.
    expect(
      discord.attachmentDownloads
        .slice(downloadsBefore)
        .map((d) => d.filename)
        .sort(),
    ).toEqual(['gone.txt', 'slow.txt']);
    expect(bot.logs.filter((l) => l.level >= 50)).toEqual([]);
  });
});
