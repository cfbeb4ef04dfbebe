import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type BudgetLimits,
  type BudgetService,
  committed,
  costOf,
  countsOf,
  createBudgetService,
  DEFAULT_PRICES,
  HOLD_MS,
  OverBudgetError,
  type Payer,
  periodEnd,
  periodKey,
} from '../../src/core/budgets.ts';
import type { Store } from '../../src/core/ports.ts';
import { openStore } from '../../src/store/index.ts';
import { createRedisStore } from '../../src/store/redis-store.ts';
import { createManualClock } from '../fakes.ts';
import { startRedis } from '../redis-server.ts';

const unlimited: BudgetLimits = { userDaily: 0, userMonthly: 0, serverDaily: 0, serverMonthly: 0 };
const alice: Payer = { guildId: 'g1', userId: 'alice', threadId: 't1', isModerator: false };
const bob: Payer = { guildId: 'g1', userId: 'bob', threadId: 't2', isModerator: false };
/** 2026-12-31 23:00 UTC: an hour before both the day and the month end. */
const NEW_YEARS_EVE = Date.UTC(2026, 11, 31, 23, 0, 0);

describe('budget arithmetic', () => {
  it('splits cached input out of input, and prices each kind at its own rate', () => {
    const counts = countsOf({ inputTokens: 1_000_000, cachedInputTokens: 400_000, outputTokens: 500_000 });
    expect(counts).toEqual({ input: 600_000, cachedInput: 400_000, output: 500_000 });
    // gpt-4.1-mini: $0.40 input, $0.10 cached input, $1.60 output per million tokens.
    expect(costOf(DEFAULT_PRICES, 'gpt-4.1-mini', counts)).toBeCloseTo(0.24 + 0.04 + 0.8, 10);
    expect(costOf(DEFAULT_PRICES, 'no-such-model', counts)).toBeUndefined();
    // A provider reporting more cached tokens than input never makes a negative count.
    expect(countsOf({ inputTokens: 10, cachedInputTokens: 50, outputTokens: 1 }).input).toBe(0);
  });

  it('ends a day at the next UTC midnight and a month on the first of the next, across a year and a leap day', () => {
    expect(periodKey(NEW_YEARS_EVE, 'day')).toBe('2026-12-31');
    expect(periodKey(NEW_YEARS_EVE, 'month')).toBe('2026-12');
    expect(new Date(periodEnd(NEW_YEARS_EVE, 'day')).toISOString()).toBe('2027-01-01T00:00:00.000Z');
    expect(new Date(periodEnd(NEW_YEARS_EVE, 'month')).toISOString()).toBe('2027-01-01T00:00:00.000Z');
    const leap = Date.UTC(2028, 1, 28, 12);
    expect(new Date(periodEnd(leap, 'day')).toISOString()).toBe('2028-02-29T00:00:00.000Z');
    expect(new Date(periodEnd(leap, 'month')).toISOString()).toBe('2028-03-01T00:00:00.000Z');
    // The last millisecond of a day is still that day.
    expect(periodKey(Date.UTC(2026, 11, 1) - 1, 'day')).toBe('2026-11-30');
  });

  it('counts live reservations, not expired ones', () => {
    const record = {
      tokens: { input: 10, cachedInput: 5, output: 20 },
      cost: 0,
      unpriced: false,
      generations: 1,
      models: [],
      holds: [
        { id: 'a', tokens: 100, until: 2000 },
        { id: 'b', tokens: 1000, until: 500 },
      ],
    };
    expect(committed(record, 1000)).toBe(135);
  });
});

describe('budgets on the real SQLite store', () => {
  let dir: string;
  let store: Store;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'threadfork-budgets-'));
  });
  afterEach(async () => {
    await store?.close();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  let n = 0;
  function budgets(
    limits: Partial<BudgetLimits>,
    options: { exemptModerators?: boolean; start?: number } = {},
  ) {
    store = openStore(`sqlite://${join(dir, `budgets-${++n}.sqlite`)}`);
    const clock = createManualClock(options.start ?? NEW_YEARS_EVE);
    const service = createBudgetService({
      store,
      clock,
      prices: DEFAULT_PRICES,
      defaults: { ...unlimited, ...limits },
      reserveOutputTokens: 100,
      exemptModerators: options.exemptModerators ?? false,
    });
    return { service, clock };
  }
  const used = (input: number, output: number, model = 'gpt-4.1-mini') => [
    { model, usage: { inputTokens: input, outputTokens: output } },
  ];

  it('settles with the real usage: the estimate is released, tokens and cost are counted per model', async () => {
    const { service } = budgets({ userDaily: 1000 });
    const reservation = await service.reserve(alice, 400);
    expect(committed((await service.report({ kind: 'user', ...alice })).day, NEW_YEARS_EVE)).toBe(400);
    await reservation.settle([
      { model: 'gpt-4.1-mini', usage: { inputTokens: 100, cachedInputTokens: 40, outputTokens: 50 } },
      { model: 'gpt-4.1', usage: { inputTokens: 100, outputTokens: 10 } },
    ]);
    await reservation.settle(used(1000, 1000)); // a second settle changes nothing
    const report = await service.report({ kind: 'user', ...alice });
    expect(report.day.tokens).toEqual({ input: 160, cachedInput: 40, output: 60 });
    expect(report.day.holds).toEqual([]);
    expect(report.day.models.map((m) => [m.model, m.tokens])).toEqual([
      ['gpt-4.1-mini', 150],
      ['gpt-4.1', 110],
    ]);
    expect(report.day.cost).toBeCloseTo((60 * 0.4 + 40 * 0.1 + 50 * 1.6 + 100 * 2 + 10 * 8) / 1e6, 12);
    expect(report.limits).toEqual({ day: 1000, month: 0 });
    // The thread and the server count it too, and the thread remembers the last context for the next estimate.
    expect((await service.report({ kind: 'thread', threadId: 't1' })).month.generations).toBe(2);
    expect((await service.report({ kind: 'server', guildId: 'g1' })).day.tokens.output).toBe(60);
    expect(await service.estimate('t1', 400)).toBe(110 + 100 + 100);
  });

  it("refuses a person over their daily budget, says what is left and when it resets, and doesn't touch others", async () => {
    const { service } = budgets({ userDaily: 1000 });
    await (await service.reserve(alice, 900)).settle(used(700, 200));
    const refused = await service.reserve(alice, 200).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(OverBudgetError);
    expect((refused as OverBudgetError).exceeded).toEqual({
      scope: 'user',
      period: 'day',
      limit: 1000,
      left: 100,
      needed: 200,
      resetsAt: Date.UTC(2027, 0, 1),
    });
    await expect(service.check(alice, 200)).rejects.toThrow(OverBudgetError);
    await service.check(alice, 100);
    await (await service.reserve(bob, 900)).settle(used(10, 10));
  });

  it('refuses everyone once the server budget is spent, whoever spent it', async () => {
    const { service } = budgets({ serverMonthly: 1000 });
    await (await service.reserve(alice, 600)).settle(used(500, 100));
    await (await service.reserve(bob, 300)).settle(used(200, 100));
    const refused = (await service.reserve(bob, 200).catch((e: unknown) => e)) as OverBudgetError;
    expect(refused.exceeded).toMatchObject({ scope: 'server', period: 'month', left: 100 });
    await expect(service.reserve(alice, 200)).rejects.toThrow(OverBudgetError);
    // A refusal reserves nothing anywhere: the person's own records are untouched by it.
    expect((await service.report({ kind: 'user', ...bob })).month.holds).toEqual([]);
  });

  it('lets only as many parallel requests through as the budget holds', async () => {
    const { service } = budgets({ userDaily: 1000 });
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => service.reserve(alice, 300)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(3);
    expect(
      results.filter((r) => r.status === 'rejected').every((r) => r.reason instanceof OverBudgetError),
    ).toBe(true);
    expect(committed((await service.report({ kind: 'user', ...alice })).day, NEW_YEARS_EVE)).toBe(900);
  });

  it('resets the daily budget at UTC midnight while the monthly one carries on into the new month only', async () => {
    const { service, clock } = budgets({ userDaily: 1000, userMonthly: 1500 });
    await (await service.reserve(alice, 1000)).settle(used(900, 100));
    await expect(service.reserve(alice, 100)).rejects.toThrow(OverBudgetError);
    clock.advance(Date.UTC(2027, 0, 1) - 1 - NEW_YEARS_EVE); // 23:59:59.999
    await expect(service.reserve(alice, 100)).rejects.toThrow(OverBudgetError);
    clock.advance(1); // midnight: a new day, and (on the 1st) a new month
    await (await service.reserve(alice, 1000)).settle(used(900, 100));
    const report = await service.report({ kind: 'user', ...alice });
    expect(report.day.generations).toBe(1);
    expect(report.resets.day).toBe(Date.UTC(2027, 0, 2));
    // Mid-month, a new day does not reset the monthly budget.
    clock.advance(24 * 3600_000);
    const monthly = (await service.reserve(alice, 600).catch((e: unknown) => e)) as OverBudgetError;
    expect(monthly.exceeded).toMatchObject({ period: 'month', left: 500, resetsAt: Date.UTC(2027, 1, 1) });
  });

  it('frees a reservation that is never settled (its process died) after HOLD_MS', async () => {
    const { service, clock } = budgets({ userDaily: 1000 }, { start: Date.UTC(2026, 11, 1, 6) });
    await service.reserve(alice, 1000);
    await expect(service.reserve(alice, 1)).rejects.toThrow(OverBudgetError);
    clock.advance(HOLD_MS + 1);
    await service.reserve(alice, 1000);
  });

  it('counts an exempt moderator without refusing them, only when configured', async () => {
    const exempt = budgets({ userDaily: 100 }, { exemptModerators: true });
    const mod = { ...alice, isModerator: true };
    await (await exempt.service.reserve(mod, 500)).settle(used(400, 100));
    expect((await exempt.service.report({ kind: 'user', ...alice })).day.generations).toBe(1);
    const strict = budgets({ userDaily: 100 });
    await expect(strict.service.reserve(mod, 500)).rejects.toThrow(OverBudgetError);
  });

  it('lets members with Manage Server change the server limits, and go back to the defaults', async () => {
    const { service } = budgets({ userDaily: 1000 });
    await expect(service.setLimits('g1', { userDaily: 10 }, { canManageServer: false })).rejects.toThrow(
      /Manage Server/,
    );
    expect(
      await service.setLimits('g1', { userDaily: 10, serverMonthly: 5 }, { canManageServer: true }),
    ).toEqual({
      ...unlimited,
      userDaily: 10,
      serverMonthly: 5,
    });
    await expect(service.reserve(alice, 11)).rejects.toThrow(OverBudgetError);
    expect((await service.limits('other-guild')).userDaily).toBe(1000);
    await service.setLimits('g1', { userDaily: null, serverMonthly: null }, { canManageServer: true });
    expect(await service.limits('g1')).toEqual({ ...unlimited, userDaily: 1000 });
  });
});

const redis = await startRedis();
afterAll(() => redis?.stop());

describe.skipIf(!redis)('budgets on Redis, from two connections', () => {
  it('lets no more requests through than the budget holds when two clients race', async () => {
    const url = redis?.url ?? '';
    const clock = createManualClock(NEW_YEARS_EVE);
    const stores = [createRedisStore(url), createRedisStore(url)];
    const services: BudgetService[] = stores.map((store) =>
      createBudgetService({
        store,
        clock,
        prices: DEFAULT_PRICES,
        defaults: { ...unlimited, userDaily: 1000, serverDaily: 2000 },
        reserveOutputTokens: 100,
        exemptModerators: false,
      }),
    );
    try {
      const results = await Promise.allSettled(
        Array.from({ length: 20 }, (_, i) => services[i % 2]!.reserve(alice, 150)),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(6);
      const report = await services[0]!.report({ kind: 'user', ...alice });
      expect(committed(report.day, NEW_YEARS_EVE)).toBe(900);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });
});
