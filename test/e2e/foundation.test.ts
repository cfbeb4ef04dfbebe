import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commands, messageCommands } from '../../src/commands/index.ts';
import { createWorld, type World } from './harness.ts';

let world: World;
beforeAll(async () => {
  world = await createWorld();
});
afterAll(() => world.close());

describe('foundation', () => {
  it('starts through its real entry point, logs in, registers its commands and answers /help', async () => {
    const bot = await world.startBot();
    expect(bot.logs.some((l) => l.msg === 'logged in')).toBe(true);
    const registered = world.discord.commands(world.discord.guildId) as { name: string }[];
    expect(registered.map((c) => c.name).sort()).toEqual([
      'Alternatives from here',
      'alternatives',
      'branch',
      'budget',
      'chat',
      'export',
      'help',
      'leaderboard',
      'settings',
      'summary',
      'usage',
    ]);

    const user = world.discord.createUser({ username: 'alice' });
    const help = await world.discord
      .runCommand({ channelId: world.discord.channelId, userId: user.id, name: 'help' })
      .response();
    expect(help.ephemeral).toBe(true);
    const text = JSON.stringify(help.embeds);
    for (const name of [
      '/chat',
      '/alternatives',
      '/branch list',
      '/branch switch',
      '/branch reset',
      '/branch prune',
      '/summary show',
      '/summary reset',
      '/settings',
      '/usage',
      '/budget',
      '/leaderboard',
      '/export votes',
      'Alternatives from here',
      '/help',
    ]) {
      expect(text).toContain(name);
    }
    // Secrets never reach the log.
    const logText = bot.logs.map((l) => JSON.stringify(l)).join('\n');
    expect(logText).not.toContain(world.env.DISCORD_TOKEN);
    expect(logText).not.toContain(world.env.OPENAI_API_KEY);
  });

  it('registers the slash commands with npm run register, without starting the bot', async () => {
    const fresh = await createWorld();
    try {
      const result = await new Promise<{ code: number | null; stdout: string }>((done) => {
        const child = spawn(process.execPath, [resolve(import.meta.dirname, '../../src/register.ts')], {
          cwd: fresh.dir,
          env: { PATH: process.env.PATH ?? '', ...fresh.env },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stdout = '';
        child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
          stdout += chunk;
        });
        child.once('exit', (code) => done({ code, stdout }));
      });
      expect(result.code).toBe(0);
      const count = commands.length + messageCommands.length;
      expect(result.stdout).toMatch(new RegExp(`Registered ${count} commands in guild`));
      expect((fresh.discord.commands(fresh.discord.guildId) as unknown[]).length).toBe(count);
    } finally {
      await fresh.close();
    }
  });

  it('refuses to start on a bad configuration, with one line naming the variable and no secret', async () => {
    const run = (env: Record<string, string>) =>
      new Promise<{ code: number | null; stderr: string }>((done) => {
        const child = spawn(process.execPath, [resolve(import.meta.dirname, '../../src/index.ts')], {
          cwd: world.dir,
          env: { PATH: process.env.PATH ?? '', ...env },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stderr = '';
        child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
          stderr += chunk;
        });
        child.once('exit', (code) => done({ code, stderr }));
      });
    const missing = await run({ OPENAI_API_KEY: 'sk-very-secret' });
    expect(missing.code).toBe(78);
    expect(missing.stderr).toMatch(/DISCORD_TOKEN is required/);
    expect(missing.stderr).not.toContain('sk-very-secret');
    const malformed = await run({ ...world.env, DISCORD_API_URL: 'ftp:/nope', ALTERNATIVES_MAX: '9' });
    expect(malformed.code).toBe(78);
    expect(malformed.stderr.trim().split('\n').slice(1)).toEqual([
      '  DISCORD_API_URL must be an http(s) URL',
      '  ALTERNATIVES_MAX must be at most 5',
    ]);
  });
});
