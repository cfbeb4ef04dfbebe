import { describe, expect, it } from 'vitest';
import { createArenaService } from '../../src/core/arena.ts';
import { createArenaLog, OUTCOMES_PER_CHUNK, type VoteOutcome } from '../../src/core/arena-log.ts';
import { createManualClock, createMemoryStore } from '../fakes.ts';

const DAY = 24 * 60 * 60 * 1000;

function outcome(n: number, closedAt: number, winnerStyle = 'formal'): VoteOutcome {
  const loserStyle = winnerStyle === 'formal' ? 'funny' : 'formal';
  return {
    voteId: `v${n}`,
    threadId: 't1',
    closedAt,
    context: [{ role: 'user', text: 'alice: hi' }],
    prompt: `alice: question ${n}`,
    winner: 'A',
    options: [
      { letter: 'A', model: 'm', style: winnerStyle, text: `win ${n}`, votes: 2 },
      { letter: 'B', model: 'm', style: loserStyle, text: `lose ${n}`, votes: 1 },
    ],
    ballots: [
      { userId: '111111111111111111', letter: 'A' },
      { userId: '222222222222222222', letter: 'A' },
      { userId: '333333333333333333', letter: 'B' },
    ],
  };
}

describe('arena log', () => {
  it('keeps every outcome across chunks, even appended all at once, per server', async () => {
    const store = createMemoryStore();
    const log = createArenaLog(store);
    const count = OUTCOMES_PER_CHUNK * 2 + 5;
    await Promise.all(Array.from({ length: count }, (_, n) => log.append('g1', outcome(n, n))));
    await log.append('g2', outcome(999, 0));
    const read = await log.read('g1');
    expect(read.map((o) => o.voteId).sort()).toEqual(Array.from({ length: count }, (_, n) => `v${n}`).sort());
    expect((await log.read('g1', count - 3)).map((o) => o.voteId).sort()).toEqual(
      [count - 3, count - 2, count - 1].map((n) => `v${n}`).sort(),
    );
    expect((await log.read('g2')).map((o) => o.voteId)).toEqual(['v999']);
    // Bounded records: no chunk holds more than its share.
    for (const [key, value] of store.data)
      if (/^arena:g1:\d+$/.test(key))
        expect((value as { outcomes: unknown[] }).outcomes.length).toBeLessThanOrEqual(OUTCOMES_PER_CHUNK);
  });
});

describe('arena service', () => {
  it('rates only the votes of the period', async () => {
    const store = createMemoryStore();
    const clock = createManualClock();
    const arena = createArenaLog(store);
    const now = clock.now();
    // Old votes: funny always won. Recent ones: formal always won.
    for (let n = 0; n < 6; n += 1) await arena.append('g', outcome(n, now - 60 * DAY, 'funny'));
    for (let n = 6; n < 12; n += 1) await arena.append('g', outcome(n, now - DAY, 'formal'));
    const service = createArenaService({ arena, store, clock, salt: 'salt-salt-salt-salt' });
    const week = await service.leaderboard('g', 'style', 'week');
    expect(week.votes).toBe(6);
    expect(week.ratings.map((r) => [r.key, r.wins, r.comparisons])).toEqual([
      ['formal', 6, 6],
      ['funny', 0, 6],
    ]);
    const all = await service.leaderboard('g', 'style', 'all');
    expect(all.votes).toBe(12);
    expect(all.ratings.map((r) => r.comparisons)).toEqual([12, 12]);
    expect((await service.leaderboard('g', 'model', 'all')).ratings).toEqual([]);
  });

  it('exports one row per rejected alternative with voters as salted hashes, stable for one salt', async () => {
    const store = createMemoryStore();
    const clock = createManualClock();
    const arena = createArenaLog(store);
    await arena.append('g', outcome(1, 5));
    const rows = await createArenaService({ arena, store, clock, salt: 'first-salt-0123456' }).exportRows(
      'g',
    );
    expect(rows).toHaveLength(1);
    const [row] = rows;
    expect(row).toMatchObject({
      vote_id: 'v1',
      prompt: 'alice: question 1',
      chosen: { letter: 'A', style: 'formal', text: 'win 1', votes: 2 },
      rejected: { letter: 'B', style: 'funny', text: 'lose 1', votes: 1 },
      total_votes: 3,
    });
    expect(row!.voters_chosen).toHaveLength(2);
    expect(row!.voters_rejected).toHaveLength(1);
    expect(JSON.stringify(rows)).not.toMatch(/111111111111111111|222222222222222222|333333333333333333/);
    const other = await createArenaService({ arena, store, clock, salt: 'other-salt-0123456' }).exportRows(
      'g',
    );
    expect(other[0]!.voters_rejected).not.toEqual(row!.voters_rejected);
    // Without a configured salt, one random salt is made and kept: two exports agree.
    const a = await createArenaService({ arena, store, clock, salt: undefined }).exportRows('g');
    const b = await createArenaService({ arena, store, clock, salt: undefined }).exportRows('g');
    expect(a[0]!.voters_chosen).toEqual(b[0]!.voters_chosen);
    expect(a[0]!.voters_chosen).not.toEqual(row!.voters_chosen);
  });
});
