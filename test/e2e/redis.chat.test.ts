// The chat scenarios with every record and the thread lock in Redis, and a look at what Redis holds.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createClient } from '@keyv/redis';
import { afterAll, describe, expect, it } from 'vitest';
import { startRedis } from '../redis-server.ts';
import { createWorld, startThread } from './harness.ts';
import { chatScenarios } from './scenarios/chat.ts';

const redis = await startRedis();
afterAll(() => redis?.stop());

describe.skipIf(!redis)('on the Redis store', () => {
  chatScenarios('conversations', { env: () => ({ STORE_URL: redis!.url }), label: 'Redis store' });

  it('keeps the thread in Redis, and makes no SQLite file', async () => {
    const world = await createWorld();
    try {
      await world.startBot({ STORE_URL: redis!.url });
      const alice = world.discord.createUser({ username: 'alice' });
      const threadId = await startThread(world, alice.id, 'where does this live?');
      const client = createClient({ url: redis!.url });
      await client.connect();
      try {
        const keys = await client.keys('threadfork*');
        expect(keys.some((k) => k.includes(`thread:${threadId}`))).toBe(true);
        expect(keys.some((k) => k.includes(`log:${threadId}:b1:0`))).toBe(true);
      } finally {
        await client.close();
      }
      expect(existsSync(join(world.dir, 'threadfork.sqlite'))).toBe(false);
    } finally {
      await world.close();
    }
  });
});
