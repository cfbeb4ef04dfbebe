// Issue 14, "Start-up, secrets": a malformed STORE_URL, or a Redis password with @ or # in it, never appears in any
// line the bot (or the sharded manager and its shards) writes, on stdout or stderr.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis } from '../redis-server.ts';
import { type BotProcess, createWorld, SHARDED_ENTRY, spawnBot, type World } from './harness.ts';

const redis = await startRedis();

/** Whether a process (a shard the manager started) is still there. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Everything a process wrote, both streams. */
const output = (bot: BotProcess) => `${bot.logs.map((l) => JSON.stringify(l)).join('\n')}\n${bot.stderr}`;

describe.skipIf(!redis)('secrets in STORE_URL', () => {
  let world: World;
  let address: string;
  const started: BotProcess[] = [];

  function start(storeUrl: string, sharded = false): BotProcess {
    const bot = spawnBot(
      { ...world.env, STORE_URL: storeUrl, SHARD_COUNT: '1' },
      world.dir,
      ...(sharded ? [SHARDED_ENTRY] : []),
    );
    started.push(bot);
    return bot;
  }

  beforeAll(async () => {
    world = await createWorld();
    address = redis!.url.replace('redis://', '');
  });
  afterAll(async () => {
    // SIGTERM: the sharded manager stops its shards (a SIGKILL would leave them behind).
    await Promise.all(started.map((bot) => bot.stop()));
    for (const bot of started)
      for (const line of bot.logs.filter((l) => l.msg === 'shard started'))
        if (alive(line.pid as number)) process.kill(line.pid as number, 'SIGKILL');
    await world?.close();
    await redis?.stop();
  });

  it.each([
    ['npm start', false],
    ['npm run start:sharded', true],
  ])(
    'refuses a STORE_URL with an unencoded # with one line that does not repeat it (%s)',
    async (_, sharded) => {
      const bot = start(`redis://:hunter2#sesame@${address}`, sharded);
      expect(await bot.exited).toBe(78);
      const text = output(bot);
      expect(text.trim().split('\n').filter(Boolean)).toEqual([
        'Invalid configuration:',
        expect.stringMatching(/^ {2}STORE_URL is not a valid URL: .* write @ # .* as %40 %23/),
      ]);
      expect(text).not.toMatch(/hunter2|sesame/);
    },
  );

  it.each([
    ['npm start', false],
    ['npm run start:sharded', true],
  ])(
    'never logs a password with @ and # that Redis refuses, while waiting for the store (%s)',
    async (_, sharded) => {
      // Raw @ (URL parsers take the last one) and an encoded # (%23): the password is "open@sesame#42".
      const bot = start(`redis://:open@sesame%2342@${address}`, sharded);
      // Redis refuses the password (it has none set): the bot retries, logging each failure, and never logs in.
      await bot.waitForLog((l) => l.msg.startsWith('the store (STORE_URL) cannot be reached'), 20_000);
      await sleep(1000);
      const text = output(bot);
      expect(text).toMatch(/\[secret\]|AUTH|WRONGPASS|cannot be reached/);
      expect(text).not.toMatch(/sesame/);
      expect(text).not.toContain('%2342');
      expect(world.discord.gatewaySessions()).toEqual([]);
    },
    40_000,
  );
});
