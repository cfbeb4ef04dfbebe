import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createAbuseGuard } from '../../src/core/abuse.ts';
import { createBudgetService, DEFAULT_PRICES, OverBudgetError } from '../../src/core/budgets.ts';
import { NotAllowedError, RateLimitedError } from '../../src/core/errors.ts';
import { createHistoryLog } from '../../src/core/history-log.ts';
import { createLocalLockService } from '../../src/core/local-lock.ts';
import type { Notice, Store } from '../../src/core/ports.ts';
import { createRunningTurns } from '../../src/core/running-turns.ts';
import { createSessionRepository } from '../../src/core/sessions.ts';
import { noTelemetry } from '../../src/core/telemetry.ts';
import { type AlternativesRequest, createThreadService } from '../../src/core/threads.ts';
import { openStore } from '../../src/store/index.ts';
import {
  createFakeBackend,
  createManualClock,
  createRecordingPresenter,
  silentLogger,
  TEST_SETTINGS,
} from '../fakes.ts';

const THREAD = 'thread-1';
const dir = mkdtempSync(join(tmpdir(), 'threadfork-spending-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let store: Store | undefined;
afterEach(async () => {
  await store?.close();
  store = undefined;
});

let n = 0;
/** The thread service as app.ts wires it, on a real SQLite store, with budgets and abuse limits. */
async function createCore(
  options: {
    userDaily?: number;
    serverDaily?: number;
    cooldownMs?: number;
    rateMessages?: number;
    maxQueued?: number;
    allowedModels?: string[];
  } = {},
) {
  store = openStore(`sqlite://${join(dir, `core-${++n}.sqlite`)}`);
  const clock = createManualClock(Date.UTC(2026, 11, 1, 12));
  const backend = createFakeBackend();
  const presenter = createRecordingPresenter();
  const budgets = createBudgetService({
    store,
    clock,
    prices: DEFAULT_PRICES,
    defaults: {
      userDaily: options.userDaily ?? 0,
      userMonthly: 0,
      serverDaily: options.serverDaily ?? 0,
      serverMonthly: 0,
    },
    reserveOutputTokens: 10,
    exemptModerators: false,
  });
  const threads = createThreadService({
    sessions: createSessionRepository(store),
    log: createHistoryLog(store),
    store,
    locks: createLocalLockService(),
    backend,
    presenter,
    running: createRunningTurns(),
    clock,
    logger: silentLogger,
    telemetry: noTelemetry,
    budgets,
    abuse: createAbuseGuard({
      store,
      clock,
      limits: {
        allowedModels: options.allowedModels ?? ['m'],
        maxStyleLength: 20,
        rateMessages: options.rateMessages ?? 0,
        rateWindowMs: 10_000,
        maxQueued: options.maxQueued ?? 0,
      },
    }),
    defaults: TEST_SETTINGS,
    limits: { maxAlternatives: 5, cooldownMs: options.cooldownMs ?? 0 },
  });
  await threads.startThread({ threadId: THREAD, guildId: 'g1', userId: 'u1' });
  let m = 0;
  const say = (text: string, authorId = 'u1') =>
    threads.receive({ threadId: THREAD, messageId: `m${++m}`, authorId, authorName: authorId, text });
  const ask = (fields: Partial<AlternativesRequest> = {}) =>
    threads.requestAlternatives({
      threadId: THREAD,
      userId: 'u1',
      isModerator: false,
      count: 2,
      prompt: { messageId: `p${++m}`, authorName: 'u1', text: 'go' },
      styles: [],
      models: [],
      temperature: undefined,
      ...fields,
    });
  const kinds = () => presenter.notices.map((notice) => notice.kind);
  return { threads, backend, presenter, budgets, clock, say, ask, kinds };
}

const overBudget = (notice: Notice | undefined) =>
  notice?.kind === 'over_budget' ? notice : expect.fail(`not an over_budget notice: ${notice?.kind}`);

describe('budgets in turns and forks', () => {
  it('counts every reply, then refuses the next message with a notice and keeps it for Retry', async () => {
    const core = await createCore({ userDaily: 30 });
    await core.say('one');
    await core.threads.idle();
    await core.say('two');
    await core.threads.idle();
    const report = await core.budgets.report({ kind: 'user', guildId: 'g1', userId: 'u1' });
    expect(report.day.generations).toBe(2);
    expect(core.backend.calls.filter((c) => c.method === 'runTurn')).toHaveLength(2);

    await core.say('three');
    await core.threads.idle();
    expect(core.backend.calls.filter((c) => c.method === 'runTurn')).toHaveLength(2);
    const notice = overBudget(core.presenter.notices.at(-1));
    expect(notice).toMatchObject({ messageId: 'm3', userId: 'u1', retry: true });
    // Spent: 6 + 8 (the fake bills history + 1 input and 5 output); needed: the last turn's 8, "u1: three" / 4
    // rounded up, and 10 for the reply.
    expect(report.day.tokens.input + report.day.tokens.output).toBe(14);
    expect(notice.exceeded).toMatchObject({ scope: 'user', period: 'day', limit: 30, left: 16, needed: 21 });
    expect(notice.exceeded.resetsAt).toBe(Date.UTC(2026, 11, 2));
    const session = (await core.threads.get(THREAD))!;
    expect(session.inbox).toEqual([]);
    expect(session.failed.map((f) => f.messageId)).toEqual(['m3']);
    // Another person is not refused by u1's budget.
    await core.say('from u2', 'u2'); // m4
    await core.threads.idle();
    expect(core.backend.calls.filter((c) => c.method === 'runTurn')).toHaveLength(3);

    // A flood over budget gets one notice per window; a message retried while still over budget gets one again.
    await core.say('four');
    await core.threads.idle();
    expect(core.kinds()).toEqual(['over_budget']);
    await core.threads.retry(THREAD, 'm3');
    await core.threads.idle();
    expect(core.presenter.notices.map((n) => n.kind === 'over_budget' && n.messageId)).toEqual(['m3', 'm3']);

    // After the reset, Retry answers the message.
    core.clock.advance(Date.UTC(2026, 11, 2) - core.clock.now());
    await core.threads.retry(THREAD, 'm3');
    await core.threads.idle();
    expect(core.backend.calls.filter((c) => c.method === 'runTurn')).toHaveLength(4);
    expect((await core.threads.get(THREAD))!.failed.map((f) => f.messageId)).toEqual(['m5']);
  });

  it('refuses /alternatives over budget before anything is generated, and counts every alternative', async () => {
    const core = await createCore({ serverDaily: 100 });
    await core.ask({ count: 3 });
    const report = await core.budgets.report({ kind: 'server', guildId: 'g1' });
    expect(report.day.generations).toBe(3);
    await core.threads.closeVote(THREAD, (await core.threads.get(THREAD))!.vote!.id, {
      userId: 'u1',
      isModerator: true,
    });
    await core.threads.idle();
    const error = await core.ask({ count: 5 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OverBudgetError);
    expect((error as OverBudgetError).exceeded.scope).toBe('server');
    expect(core.backend.calls.filter((c) => c.method === 'generateAlternatives')).toHaveLength(1);
  });

  it('lets only one of parallel /alternatives through a budget that holds one', async () => {
    const core = await createCore({ userDaily: 30 });
    // Three threads, so only the budget (not the open vote) decides.
    for (const id of ['t2', 't3'])
      await core.threads.startThread({ threadId: id, guildId: 'g1', userId: 'u1' });
    const results = await Promise.allSettled(
      [THREAD, 't2', 't3'].map((threadId) => core.ask({ threadId, count: 2 })),
    );
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected', 'rejected']);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(OverBudgetError);
  });
});

describe('abuse limits', () => {
  it('takes the /alternatives cooldown atomically: of three parallel requests only one passes', async () => {
    const core = await createCore({ cooldownMs: 3_600_000 });
    for (const id of ['t2', 't3'])
      await core.threads.startThread({ threadId: id, guildId: 'g1', userId: 'u1' });
    const results = await Promise.allSettled(
      [THREAD, 't2', 't3'].map((threadId) => core.ask({ threadId, count: 4 })),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(RateLimitedError);
    expect(core.backend.calls.filter((c) => c.method === 'generateAlternatives')).toHaveLength(1);
  });

  it('limits models to the allowlist for non-moderators, and styles in length', async () => {
    const core = await createCore({ allowedModels: ['m', 'small'] });
    const check = (fields: { models?: string[]; styles?: string[]; isModerator?: boolean }) =>
      core.threads.checkAlternatives({
        threadId: THREAD,
        userId: 'u1',
        isModerator: fields.isModerator ?? false,
        count: 2,
        models: fields.models ?? [],
        styles: fields.styles ?? [],
      });
    await expect(check({ models: ['huge'] })).rejects.toThrow(NotAllowedError);
    await expect(check({ models: ['small', 'm'] })).resolves.toBe(2);
    await expect(check({ models: ['huge'], isModerator: true })).resolves.toBe(2);
    await expect(check({ styles: ['x'.repeat(21)] })).rejects.toThrow(/at most 20 characters/);
    await expect(check({ styles: ['x'.repeat(20)] })).resolves.toBe(2);
  });

  it('refuses a person posting faster than the rate, with one notice per window, and no one else', async () => {
    const core = await createCore({ rateMessages: 2 });
    expect(await core.say('1')).toBe('queued');
    expect(await core.say('2')).toBe('queued');
    expect(await core.say('3')).toBe('refused');
    expect(await core.say('4')).toBe('refused');
    expect(await core.say('other', 'u2')).toBe('queued');
    expect(core.kinds()).toEqual(['message_refused']);
    expect(core.presenter.notices[0]).toMatchObject({
      reason: 'rate_limited',
      messageId: 'm3',
      retryAfterMs: 10_000,
    });
    core.clock.advance(10_000);
    expect(await core.say('5')).toBe('queued');
    await core.threads.idle();
    expect(core.backend.calls.filter((c) => c.method === 'runTurn').map((c) => c.input?.[0]?.text)).toEqual([
      'u1: 1',
      'u1: 2',
      'u2: other',
      'u1: 5',
    ]);
  });

  it('bounds the queue of a thread', async () => {
    const core = await createCore({ maxQueued: 2 });
    // Hold the worker: the first message's turn waits until released.
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const runTurn = core.backend.runTurn.bind(core.backend);
    core.backend.runTurn = async (request) => {
      await gate;
      return runTurn(request);
    };
    expect(await core.say('1')).toBe('queued');
    expect(await core.say('2')).toBe('queued');
    expect(await core.say('3')).toBe('refused');
    expect(core.presenter.notices).toMatchObject([
      { kind: 'message_refused', reason: 'queue_full', messageId: 'm3' },
    ]);
    release();
    await core.threads.idle();
    expect(await core.say('4')).toBe('queued');
  });
});
