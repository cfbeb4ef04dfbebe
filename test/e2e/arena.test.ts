import { afterEach, describe, expect, it } from 'vitest';
import { createArenaLog, type VoteOutcome } from '../../src/core/arena-log.ts';
import type { Comparison } from '../../src/core/leaderboard.ts';
import { openPersistence } from '../../src/store/index.ts';
import { reference } from '../core/bt-reference.ts';
import type { MessageView } from '../emulators/discord/types.ts';
import { silentLogger } from '../fakes.ts';
import {
  type BotProcess,
  click,
  createWorld,
  openVote,
  startThread,
  type World,
  waitForBallot,
} from './harness.ts';
import { pngSize } from './png.ts';

let world: World | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

const MANAGE_GUILD = 1n << 5n;

/** Runs a command and resolves with its response once it carries an attachment or embeds (deferred replies). */
async function finalResponse(
  w: World,
  c: Parameters<World['discord']['runCommand']>[0],
  done: (m: MessageView) => boolean,
): Promise<MessageView> {
  const first = await w.discord.runCommand(c).response({ timeoutMs: 30_000 });
  return w.discord.waitFor(
    () => {
      const m = w.discord.message(first.id);
      return m && done(m) ? m : undefined;
    },
    { timeoutMs: 30_000, message: `the final response to /${c.name}` },
  );
}

async function download(url: string): Promise<Buffer> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

/** Six votes between two styles: the first style (A) wins four, the second (B) two. */
async function seedVotes(w: World, bot: BotProcess, threadId: string, userId: string) {
  const winners = ['A', 'A', 'B', 'A', 'B', 'A'];
  for (const [i, letter] of winners.entries()) {
    const ballot = await openVote(w, threadId, userId, {
      count: 2,
      prompt: `question ${i}`,
      styles: 'formal | funny',
    });
    await click(w, ballot, letter, userId);
    await waitForBallot(w, threadId, (m) => m.id === ballot.id && m.content.startsWith('✅'));
    await w.discord.waitFor(() => bot.logs.filter((l) => l.msg === 'vote closed').length === i + 1, {
      message: `vote ${i} applied`,
    });
  }
}

describe('leaderboard, export and the tree picture', () => {
  it('rates styles from real votes as the reference fit does, exports the pairs, and draws the tree', async () => {
    world = await createWorld();
    const w = world;
    const bot = await w.startBot({
      ALTERNATIVES_COOLDOWN_SECONDS: '0',
      EXPORT_SALT: 'a-test-salt-of-some-length',
    });
    const alice = w.discord.createUser({ username: 'alice', manageThreads: true });
    const admin = w.discord.createUser({
      username: 'admin',
      roles: [w.discord.createRole({ name: 'admin', permissions: MANAGE_GUILD })],
    });
    const threadId = await startThread(w, alice.id, 'rate my styles');
    await seedVotes(w, bot, threadId, alice.id);

    // The leaderboard: the table's scores are the reference Bradley-Terry fit of 4 wins to 2 (same prior).
    const board = await finalResponse(
      w,
      { channelId: threadId, userId: alice.id, name: 'leaderboard', options: { by: 'style' } },
      (m) => m.attachments.length > 0,
    );
    const embed = board.embeds[0] as { description: string; image: { url: string } };
    const scores = new Map(
      [...embed.description.matchAll(/^\s*\d+ (formal|funny)\s+(\d+) \S+\s+(\d+)\/(\d+)$/gm)].map((m) => [
        m[1],
        { score: Number(m[2]), won: Number(m[3]), played: Number(m[4]) },
      ]),
    );
    const games = [
      ...Array.from({ length: 4 }, (_, vote) => ({ winner: 'formal', loser: 'funny', vote })),
      ...Array.from({ length: 2 }, (_, i) => ({ winner: 'funny', loser: 'formal', vote: 4 + i })),
    ];
    const fit = reference(['formal', 'funny'], games, 1);
    const expected = (key: string) => Math.round(1000 + (400 / Math.LN10) * fit.get(key)!);
    expect(scores.get('formal')).toEqual({ score: expected('formal'), won: 4, played: 6 });
    expect(scores.get('funny')).toEqual({ score: expected('funny'), won: 2, played: 6 });
    expect(embed.description.indexOf('formal')).toBeLessThan(embed.description.indexOf('funny'));
    expect(board.attachments[0]!.filename).toBe('leaderboard.png');
    const chart = pngSize(await download(board.attachments[0]!.url));
    expect(chart.width).toBeGreaterThan(300);
    expect(chart.height).toBeGreaterThan(80);

    // One model only: nothing to compare by model.
    const byModel = await finalResponse(
      w,
      { channelId: threadId, userId: alice.id, name: 'leaderboard', options: { by: 'model' } },
      (m) => m.embeds.length > 0,
    );
    expect(JSON.stringify(byModel.embeds)).toMatch(/Not enough votes yet \(6 votes/);

    // The export: one row per vote (two alternatives each), the winner chosen, voters hashed.
    const exported = await finalResponse(
      w,
      { channelId: threadId, userId: admin.id, name: 'export', subcommand: 'votes' },
      (m) => m.attachments.length > 0,
    );
    expect(exported.attachments[0]!.filename).toBe('votes.jsonl');
    const text = (await download(exported.attachments[0]!.url)).toString('utf8');
    const rows = text
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(rows).toHaveLength(6);
    expect(rows.map((r) => r.prompt)).toEqual(Array.from({ length: 6 }, (_, i) => `alice: question ${i}`));
    expect(rows.map((r) => r.chosen.style)).toEqual([
      'formal',
      'formal',
      'funny',
      'formal',
      'funny',
      'formal',
    ]);
    for (const row of rows) {
      expect(row.rejected.style).not.toBe(row.chosen.style);
      expect(row.chosen.text.length).toBeGreaterThan(0);
      expect(row.rejected.text.length).toBeGreaterThan(0);
      expect(row.chosen.model).toBe(row.rejected.model);
      expect(row.chosen.votes).toBe(1);
      expect(row.rejected.votes).toBe(0);
      expect(row.total_votes).toBe(1);
      expect(row.voters_rejected).toEqual([]);
      expect(row.voters_chosen).toHaveLength(1);
      expect(row.voters_chosen[0]).toMatch(/^[0-9a-f]{16}$/);
      expect(row.context.at(-1)).toMatchObject({ role: 'assistant' });
    }
    expect(new Set(rows.map((r) => r.voters_chosen[0])).size).toBe(1);
    expect(text).not.toContain(alice.id);
    expect(text).not.toContain('"alice"');

    // Without Manage Server, no export, even where a server admin let the member see the command.
    w.discord.allowCommand('export', alice.id);
    const refused = await w.discord
      .runCommand({ channelId: threadId, userId: alice.id, name: 'export', subcommand: 'votes' })
      .response({ timeoutMs: 15_000 });
    expect(refused.content).toMatch(/Manage Server/);
    expect(refused.attachments).toEqual([]);

    // The tree picture: a PNG of sensible size next to the list.
    const list = await finalResponse(
      w,
      { channelId: threadId, userId: alice.id, name: 'branch', subcommand: 'list' },
      (m) => m.attachments.length > 0,
    );
    expect(list.attachments[0]!.filename).toBe('branches.png');
    const picture = await download(list.attachments[0]!.url);
    const size = pngSize(picture);
    expect(size.width).toBeGreaterThanOrEqual(400);
    expect(size.width).toBeLessThanOrEqual(2000);
    // 13 branches (the start and two per vote), one row each.
    expect(size.height).toBeGreaterThanOrEqual(13 * 30);
    expect(size.height).toBeLessThanOrEqual(2000);
    expect(picture.length).toBeGreaterThan(2000);
  }, 180_000);

  it('ranks (model, style) pairs from a seeded store as the reference fit does, with intervals around them', async () => {
    world = await createWorld();
    const w = world;
    // Seed the bot's own SQLite store, through the arena log, before the bot starts: 60 votes of three alternatives.
    const entries = [
      ['m1', 'formal'],
      ['m1', 'funny'],
      ['m2', 'formal'],
      ['m2', undefined],
    ] as const;
    const strength = [2, 1, 0.5, 1.5];
    const persistence = openPersistence(w.env.STORE_URL!, silentLogger);
    const log = createArenaLog(persistence.store);
    const comparisons: Comparison[] = [];
    let seed = 42;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let vote = 0; vote < 60; vote += 1) {
      const picked = [vote % 4, (vote + 1) % 4, (vote + 2) % 4];
      // The winner drawn in proportion to strength, as Bradley-Terry assumes.
      let draw = random() * picked.reduce((sum, i) => sum + strength[i]!, 0);
      let winner = picked[2]!;
      for (const i of picked) {
        draw -= strength[i]!;
        if (draw < 0) {
          winner = i;
          break;
        }
      }
      const key = (i: number) => `${entries[i]![0]} · ${entries[i]![1] ?? 'plain'}`;
      for (const i of picked)
        if (i !== winner) comparisons.push({ winner: key(winner), loser: key(i), vote });
      const outcome: VoteOutcome = {
        voteId: `seed${vote}`,
        threadId: '1',
        closedAt: Date.now() - vote * 60_000,
        context: [],
        prompt: `q${vote}`,
        winner: String.fromCharCode(65 + picked.indexOf(winner)),
        options: picked.map((i, n) => ({
          letter: String.fromCharCode(65 + n),
          model: entries[i]![0],
          style: entries[i]![1],
          text: `text ${vote} ${n}`,
          votes: i === winner ? 1 : 0,
        })),
        ballots: [],
      };
      await log.append(w.discord.guildId, outcome);
    }
    await persistence.close();

    await w.startBot();
    const alice = w.discord.createUser({ username: 'alice' });
    const board = await finalResponse(
      w,
      { channelId: w.discord.channelId, userId: alice.id, name: 'leaderboard', options: { by: 'both' } },
      (m) => m.attachments.length > 0,
    );
    const description = (board.embeds[0] as { description: string }).description;
    const rows = [
      ...description.matchAll(/^\s*\d+ (m\d · \w+)\s+(\d+) \+(\d+)\/-(\d+)\s+(\d+)\/(\d+)$/gm),
    ].map((m) => ({
      key: m[1]!,
      score: Number(m[2]),
      up: Number(m[3]),
      down: Number(m[4]),
      played: Number(m[6]),
    }));
    const keys = ['m1 · formal', 'm1 · funny', 'm2 · formal', 'm2 · plain'];
    const fit = reference(keys, comparisons, 1);
    const expected = keys
      .map((key) => ({ key, score: Math.round(1000 + (400 / Math.LN10) * fit.get(key)!) }))
      .sort((a, b) => b.score - a.score);
    expect(rows.map((r) => ({ key: r.key, score: r.score }))).toEqual(expected);
    for (const row of rows) {
      expect(row.played).toBe(comparisons.filter((c) => c.winner === row.key || c.loser === row.key).length);
      // Intervals from the bootstrap: on both sides, and neither empty nor absurd for 45 comparisons each.
      expect(row.up).toBeGreaterThan(5);
      expect(row.down).toBeGreaterThan(5);
      expect(row.up + row.down).toBeLessThan(600);
    }
    const chart = pngSize(await download(board.attachments[0]!.url));
    expect(chart.height).toBeGreaterThan(4 * 26);
  });
});
