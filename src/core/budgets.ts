import { randomUUID } from 'node:crypto';
import { BotError, NotAllowedError } from './errors.ts';
import type { Clock, Store, Usage } from './ports.ts';

/**
 * Token budgets per person and per server, per day and per month, and the usage they are counted from.
 *
 * A generation first reserves its estimate in every record it counts towards (one atomic `Store.update` per record,
 * so parallel requests, in one process or several on Redis, cannot all pass a budget that fits only one), then
 * settles with the tokens the provider reported. A reservation is a hold with an expiry inside the record: a process
 * that dies between the two leaves a hold that stops counting after HOLD_MS instead of eating the budget for good.
 *
 * Periods are UTC days and UTC months. Tokens are input (cached included) plus output; the estimated cost prices
 * each kind at its own rate.
 */

/** How long a reservation counts when it is never settled (its process died during the generation). */
export const HOLD_MS = 15 * 60_000;
/** Models kept per record for "top models"; the rest are summed as "other". */
const MAX_MODELS = 12;

export type BudgetScope = 'user' | 'server';
export type BudgetPeriod = 'day' | 'month';

/** Token limits; 0 is unlimited. */
export interface BudgetLimits {
  userDaily: number;
  userMonthly: number;
  serverDaily: number;
  serverMonthly: number;
}

/** USD per million tokens. */
export interface Price {
  input: number;
  cachedInput: number;
  output: number;
}

/** Prices by model name; a model not listed is counted in tokens, its cost unknown (0 in sums, flagged). */
export type PriceTable = ReadonlyMap<string, Price>;

/** Defaults from OpenAI's published prices (USD per 1M tokens, read 2026-11); PRICES in the config overrides them. */
export const DEFAULT_PRICES: PriceTable = new Map<string, Price>([
  ['gpt-4.1', { input: 2.0, cachedInput: 0.5, output: 8.0 }],
  ['gpt-4.1-mini', { input: 0.4, cachedInput: 0.1, output: 1.6 }],
  ['gpt-4.1-nano', { input: 0.1, cachedInput: 0.025, output: 0.4 }],
  ['gpt-4o', { input: 2.5, cachedInput: 1.25, output: 10.0 }],
  ['gpt-4o-mini', { input: 0.15, cachedInput: 0.075, output: 0.6 }],
  ['gpt-5', { input: 1.25, cachedInput: 0.125, output: 10.0 }],
  ['gpt-5-mini', { input: 0.25, cachedInput: 0.025, output: 2.0 }],
  ['gpt-5-nano', { input: 0.05, cachedInput: 0.005, output: 0.4 }],
  ['gpt-5.4', { input: 2.5, cachedInput: 0.25, output: 15.0 }],
  ['gpt-5.4-mini', { input: 0.75, cachedInput: 0.075, output: 4.5 }],
]);

/** Tokens by kind; the kinds do not overlap (`input` is the uncached part of the prompt). */
export interface TokenCounts {
  input: number;
  cachedInput: number;
  output: number;
}

export interface ModelUsage {
  model: string;
  tokens: number;
  cost: number;
}

/** One stored record: what a person, a server or a thread spent in one period. */
export interface UsageRecord {
  tokens: TokenCounts;
  /** Estimated USD. */
  cost: number;
  /** True when some model had no price: `cost` leaves it out. */
  unpriced: boolean;
  generations: number;
  /** Kept as a list (model names come from people: never a plain object keyed by them). */
  models: ModelUsage[];
  /** Reservations not settled yet. */
  holds: { id: string; tokens: number; until: number }[];
  /** Thread records only: the prompt and reply of the last generation, the base of the next estimate. */
  lastContextTokens?: number;
}

const emptyRecord = (): UsageRecord => ({
  tokens: { input: 0, cachedInput: 0, output: 0 },
  cost: 0,
  unpriced: false,
  generations: 0,
  models: [],
  holds: [],
});

export const totalTokens = (t: TokenCounts) => t.input + t.cachedInput + t.output;

/** A usage as the three non-overlapping kinds. */
export function countsOf(usage: Usage): TokenCounts {
  const cachedInput = Math.min(usage.cachedInputTokens ?? 0, usage.inputTokens);
  return { input: usage.inputTokens - cachedInput, cachedInput, output: usage.outputTokens };
}

/** Estimated USD for `counts` of `model`; undefined when the model has no price. */
export function costOf(prices: PriceTable, model: string, counts: TokenCounts): number | undefined {
  const price = prices.get(model);
  if (!price) return undefined;
  return (
    (counts.input * price.input + counts.cachedInput * price.cachedInput + counts.output * price.output) /
    1_000_000
  );
}

/** "2026-12-01" or "2026-12": the period `now` falls in (UTC). */
export function periodKey(now: number, period: BudgetPeriod): string {
  const iso = new Date(now).toISOString();
  return period === 'day' ? iso.slice(0, 10) : iso.slice(0, 7);
}

/** When the period `now` falls in ends: the next UTC midnight, or the first of the next UTC month. */
export function periodEnd(now: number, period: BudgetPeriod): number {
  const d = new Date(now);
  return period === 'day'
    ? Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1)
    : Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

/** Tokens counted against a limit: spent, plus reservations still live at `now`. */
export function committed(record: UsageRecord | undefined, now: number): number {
  if (!record) return 0;
  return totalTokens(record.tokens) + liveHolds(record, now).reduce((sum, h) => sum + h.tokens, 0);
}

const liveHolds = (record: UsageRecord, now: number) => record.holds.filter((h) => h.until > now);

/** Adds a settled generation to a record (pure). */
export function addUsage(
  record: UsageRecord | undefined,
  entry: { model: string; counts: TokenCounts; cost: number | undefined },
): UsageRecord {
  const r = record ?? emptyRecord();
  const tokens = totalTokens(entry.counts);
  const models = r.models.map((m) =>
    m.model === entry.model ? { ...m, tokens: m.tokens + tokens, cost: m.cost + (entry.cost ?? 0) } : m,
  );
  if (!models.some((m) => m.model === entry.model))
    models.push({ model: entry.model, tokens, cost: entry.cost ?? 0 });
  models.sort((a, b) => b.tokens - a.tokens);
  if (models.length > MAX_MODELS) {
    const rest = models.splice(MAX_MODELS - 1);
    models.push({
      model: 'other',
      tokens: rest.reduce((s, m) => s + m.tokens, 0),
      cost: rest.reduce((s, m) => s + m.cost, 0),
    });
  }
  return {
    ...r,
    tokens: {
      input: r.tokens.input + entry.counts.input,
      cachedInput: r.tokens.cachedInput + entry.counts.cachedInput,
      output: r.tokens.output + entry.counts.output,
    },
    cost: r.cost + (entry.cost ?? 0),
    unpriced: r.unpriced || entry.cost === undefined,
    generations: r.generations + 1,
    models,
  };
}

/** What was exceeded; the Discord layer words it (what is left, when it resets). */
export interface BudgetExceeded {
  scope: BudgetScope;
  period: BudgetPeriod;
  limit: number;
  /** Tokens left in that budget (0 or more; less than this generation's estimate). */
  left: number;
  /** Estimated tokens the refused generation needed. */
  needed: number;
  resetsAt: number;
}

/** A generation would go over a budget: nothing was spent. */
export class OverBudgetError extends BotError {
  readonly exceeded: BudgetExceeded;
  constructor(exceeded: BudgetExceeded) {
    super(
      'over_budget',
      `Over the ${exceeded.scope === 'user' ? 'personal' : 'server'} ${exceeded.period === 'day' ? 'daily' : 'monthly'} budget.`,
    );
    this.exceeded = exceeded;
  }
}

/** Who a generation is charged to. */
export interface Payer {
  guildId: string | undefined;
  userId: string;
  threadId: string;
  /** With BUDGET_EXEMPT_MODERATORS, a moderator's generations are counted but never refused. */
  isModerator: boolean;
}

/** Reserved spending, to settle once the generation ended (exactly once; a second call does nothing). */
export interface Reservation {
  /** `used`: one entry per generation that reported usage; none for a generation that failed before it. */
  settle(used: readonly { model: string; usage: Usage }[]): Promise<void>;
}

export interface UsageReport {
  day: UsageRecord;
  month: UsageRecord;
  /** Limits that apply to this scope (user or server); undefined for a thread. */
  limits: { day: number; month: number } | undefined;
  resets: { day: number; month: number };
}

export interface BudgetService {
  /** The tokens a generation is expected to take: the thread's last prompt and reply, the new input, a full reply. */
  estimate(threadId: string, inputChars: number): Promise<number>;
  /** Reserves `tokens` in every budget the payer counts towards, or throws OverBudgetError having reserved nothing. */
  reserve(payer: Payer, tokens: number): Promise<Reservation>;
  /** Would `tokens` fit now? Throws OverBudgetError if not; reserves nothing (a check before anything is shown). */
  check(payer: Payer, tokens: number): Promise<void>;
  report(
    scope:
      | { kind: 'user'; guildId: string | undefined; userId: string }
      | { kind: 'server'; guildId: string | undefined }
      | { kind: 'thread'; threadId: string },
  ): Promise<UsageReport>;
  limits(guildId: string | undefined): Promise<BudgetLimits>;
  /** Changes a server's limits (members with Manage Server); `null` for a field goes back to the default. */
  setLimits(
    guildId: string | undefined,
    patch: Partial<Record<keyof BudgetLimits, number | null>>,
    by: { canManageServer: boolean },
  ): Promise<BudgetLimits>;
}

export interface BudgetOptions {
  store: Store;
  clock: Clock;
  prices: PriceTable;
  defaults: BudgetLimits;
  /** The largest reply a reservation expects (tokens). */
  reserveOutputTokens: number;
  exemptModerators: boolean;
}

const guildKey = (guildId: string | undefined) => guildId ?? 'dm';
const limitsKey = (guildId: string | undefined) => `budget:limits:${guildKey(guildId)}`;
const userKey = (guildId: string | undefined, userId: string, period: string) =>
  `budget:user:${guildKey(guildId)}:${userId}:${period}`;
const serverKey = (guildId: string | undefined, period: string) =>
  `budget:server:${guildKey(guildId)}:${period}`;
const threadKey = (threadId: string, period: string) => `budget:thread:${threadId}:${period}`;

export function createBudgetService({
  store,
  clock,
  prices,
  defaults,
  reserveOutputTokens,
  exemptModerators,
}: BudgetOptions): BudgetService {
  async function limits(guildId: string | undefined): Promise<BudgetLimits> {
    const override = await store.get<Partial<BudgetLimits>>(limitsKey(guildId));
    return { ...defaults, ...override };
  }

  /** The records a payer's generation counts towards now, with their limits (0: unlimited, counted only). */
  async function budgetsOf(payer: Payer, now: number) {
    const l = await limits(payer.guildId);
    const day = periodKey(now, 'day');
    const month = periodKey(now, 'month');
    const limited = (limit: number) => (payer.isModerator && exemptModerators ? 0 : limit);
    return [
      {
        key: userKey(payer.guildId, payer.userId, day),
        scope: 'user',
        period: 'day',
        limit: limited(l.userDaily),
      },
      {
        key: userKey(payer.guildId, payer.userId, month),
        scope: 'user',
        period: 'month',
        limit: limited(l.userMonthly),
      },
      { key: serverKey(payer.guildId, day), scope: 'server', period: 'day', limit: limited(l.serverDaily) },
      {
        key: serverKey(payer.guildId, month),
        scope: 'server',
        period: 'month',
        limit: limited(l.serverMonthly),
      },
    ] as const;
  }

  function overBudget(
    b: { scope: BudgetScope; period: BudgetPeriod; limit: number },
    record: UsageRecord | undefined,
    tokens: number,
    now: number,
  ): OverBudgetError {
    return new OverBudgetError({
      scope: b.scope,
      period: b.period,
      limit: b.limit,
      left: Math.max(0, b.limit - committed(record, now)),
      needed: tokens,
      resetsAt: periodEnd(now, b.period),
    });
  }

  async function settleInto(
    key: string,
    holdId: string,
    used: readonly { model: string; counts: TokenCounts; cost: number | undefined }[],
    extra?: (r: UsageRecord) => UsageRecord,
  ): Promise<void> {
    const now = clock.now();
    await store.update<UsageRecord>(key, (current) => {
      let r = current ?? emptyRecord();
      r = { ...r, holds: r.holds.filter((h) => h.id !== holdId && h.until > now) };
      for (const entry of used) r = addUsage(r, entry);
      return extra ? extra(r) : r;
    });
  }

  return {
    async estimate(threadId, inputChars) {
      const context = (await store.get<UsageRecord>(threadKey(threadId, periodKey(clock.now(), 'month'))))
        ?.lastContextTokens;
      return (context ?? 0) + Math.ceil(inputChars / 4) + reserveOutputTokens;
    },

    async check(payer, tokens) {
      const now = clock.now();
      for (const b of await budgetsOf(payer, now)) {
        if (b.limit <= 0) continue;
        const record = await store.get<UsageRecord>(b.key);
        if (committed(record, now) + tokens > b.limit) throw overBudget(b, record, tokens, now);
      }
    },

    async reserve(payer, tokens) {
      const now = clock.now();
      const id = randomUUID();
      const hold = { id, tokens, until: now + HOLD_MS };
      const budgets = await budgetsOf(payer, now);
      const taken: string[] = [];
      const release = () =>
        Promise.all(taken.map((key) => settleInto(key, id, []).catch(() => {}))).then(() => {});
      try {
        for (const b of budgets) {
          // Unlimited budgets hold nothing: they are only counted when the generation settles.
          if (b.limit <= 0) continue;
          await store.update<UsageRecord>(b.key, (current) => {
            const record = current ?? emptyRecord();
            if (committed(record, now) + tokens > b.limit) throw overBudget(b, record, tokens, now);
            return { ...record, holds: [...liveHolds(record, now), hold] };
          });
          taken.push(b.key);
        }
      } catch (error) {
        await release();
        throw error;
      }
      let settled = false;
      return {
        async settle(used) {
          if (settled) return;
          settled = true;
          const entries = used.map(({ model, usage }) => {
            const counts = countsOf(usage);
            return { model, counts, cost: costOf(prices, model, counts) };
          });
          // The period of the reservation: a generation that ends after midnight counts for the day it began.
          const keys = budgets.map((b) => b.key);
          await Promise.all(keys.map((key) => settleInto(key, id, entries)));
          const last = entries.at(-1);
          await Promise.all(
            (['day', 'month'] as const).map((period) =>
              settleInto(threadKey(payer.threadId, periodKey(now, period)), id, entries, (r) =>
                last ? { ...r, lastContextTokens: totalTokens(last.counts) } : r,
              ),
            ),
          );
        },
      };
    },

    async report(scope) {
      const now = clock.now();
      const keyOf = (period: string) =>
        scope.kind === 'user'
          ? userKey(scope.guildId, scope.userId, period)
          : scope.kind === 'server'
            ? serverKey(scope.guildId, period)
            : threadKey(scope.threadId, period);
      const [day, month] = await Promise.all(
        (['day', 'month'] as const).map(async (p) => {
          const r = (await store.get<UsageRecord>(keyOf(periodKey(now, p)))) ?? emptyRecord();
          return { ...r, holds: liveHolds(r, now) };
        }),
      );
      let reportLimits: UsageReport['limits'];
      if (scope.kind !== 'thread') {
        const l = await limits(scope.guildId);
        reportLimits =
          scope.kind === 'user'
            ? { day: l.userDaily, month: l.userMonthly }
            : { day: l.serverDaily, month: l.serverMonthly };
      }
      return {
        day: day!,
        month: month!,
        limits: reportLimits,
        resets: { day: periodEnd(now, 'day'), month: periodEnd(now, 'month') },
      };
    },

    limits,

    async setLimits(guildId, patch, by) {
      if (!by.canManageServer)
        throw new NotAllowedError('Only members with Manage Server can change budgets.');
      await store.update<Partial<BudgetLimits>>(limitsKey(guildId), (current) => {
        const next: Partial<BudgetLimits> = { ...current };
        for (const field of ['userDaily', 'userMonthly', 'serverDaily', 'serverMonthly'] as const) {
          const value = patch[field];
          if (value === null) delete next[field];
          else if (value !== undefined) next[field] = value;
        }
        return Object.keys(next).length > 0 ? next : undefined;
      });
      return limits(guildId);
    },
  };
}
