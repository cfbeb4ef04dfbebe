import { Events } from 'discord.js';
import { afterEach, describe, expect, it } from 'vitest';
import { png } from '../../fixtures/media.ts';
import { once, start, stopAll } from './harness.ts';

afterEach(stopAll);

describe('discord emulator: attachment URLs', () => {
  it('serves the bytes from a signed URL until it expires, then 404', async () => {
    const { emu, client } = await start();
    const alice = emu.createUser({ username: 'alice' });
    const image = png([1, 2, 3]);
    const got = once(client, Events.MessageCreate);
    emu.postMessage(emu.channelId, alice.id, 'a picture', {
      attachments: [{ filename: 'p.png', content: image, contentType: 'image/png' }],
    });
    const [message] = await got;
    const url = new URL(message.attachments.first()?.url ?? '');
    expect([...url.searchParams.keys()]).toEqual(['ex', 'is', 'hm']);
    expect(Buffer.from(await (await fetch(url)).arrayBuffer())).toEqual(image);
    const forged = new URL(url);
    forged.searchParams.set('ex', 'ffffffff');
    expect((await fetch(forged)).status).toBe(404);
    emu.expireAttachments();
    expect((await fetch(url)).status).toBe(404);
  });
});
