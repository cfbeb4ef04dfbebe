import { describe, expect, it } from 'vitest';
import { condensedOf, tailStart } from '../../src/core/context.ts';
import { contextWindowOf, createContextPolicy } from '../../src/core/context-windows.ts';
import { ContextTooLongError } from '../../src/core/errors.ts';
import { createHistoryLog } from '../../src/core/history-log.ts';
import { createLocalLockService } from '../../src/core/local-lock.ts';
import type { Item } from '../../src/core/model.ts';
import { createRunningTurns } from '../../src/core/running-turns.ts';
import { createSessionRepository } from '../../src/core/sessions.ts';
import { noTelemetry } from '../../src/core/telemetry.ts';
import { createThreadService } from '../../src/core/threads.ts';
import {
  createFakeBackend,
  createManualClock,
  createMemoryStore,
  createRecordingPresenter,
  silentLogger,
  TEST_SETTINGS,
} from '../fakes.ts';

const THREAD = 'thread-1';
/** Model "m" reads 400 tokens: condensed past 240, keeping the latest 120 verbatim. */
const POLICY = createContextPolicy({ windows: new Map([['m', 400]]) });

async function startedCore() {
  const store = createMemoryStore();
  const sessions = createSessionRepository(store);
  const log = createHistoryLog(store);
  const backend = createFakeBackend();
  const presenter = createRecordingPresenter();
  const threads = createThreadService({
    sessions,
    log,
    store,
    locks: createLocalLockService(),
    backend,
    presenter,
    running: createRunningTurns(),
    clock: createManualClock(),
    logger: silentLogger,
    telemetry: noTelemetry,
    defaults: TEST_SETTINGS,
    limits: { maxAlternatives: 5, cooldownMs: 0 },
    context: POLICY,
  });
  await threads.startThread({ threadId: THREAD, guildId: 'g', userId: 'u1' });
  let n = 0;
  const say = async (count: number) => {
    for (let i = 0; i < count; i += 1) {
      n += 1;
      await threads.receive({
        threadId: THREAD,
        messageId: `m${n}`,
        authorId: 'u1',
        authorName: 'u1',
        text: `message ${n}`,
      });
      await threads.idle();
    }
  };
  const session = async () => (await sessions.get(THREAD))!;
  const runs = () => backend.calls.filter((c) => c.method === 'runTurn');
  return { sessions, log, backend, presenter, threads, say, session, runs };
}

describe('context windows', () => {
  it('knows models by name and by dated snapshot, lets overrides win, and falls back for unknown ones', () => {
    const none = new Map<string, number>();
    expect(contextWindowOf('gpt-4o', none, 8192)).toBe(128_000);
    expect(contextWindowOf('gpt-4o-2024-08-06', none, 8192)).toBe(128_000);
    // The longest matching name wins: gpt-4o-mini is not gpt-4.
    expect(contextWindowOf('gpt-4.1-mini', none, 8192)).toBe(1_047_576);
    expect(contextWindowOf('tf-test-8k', none, 1)).toBe(8192);
    expect(contextWindowOf('llama3', none, 4096)).toBe(4096);
    expect(contextWindowOf('gpt-4o', new Map([['gpt-4o', 1000]]), 8192)).toBe(1000);
    expect(contextWindowOf('my-model-q4', new Map([['my-model', 32_000]]), 8192)).toBe(32_000);
  });

  it('sets thresholds as shares of the window', () => {
    const policy = createContextPolicy({
      windows: new Map([['m', 10_000]]),
      thresholdShare: 0.5,
      keepShare: 0.2,
    });
    expect(policy.thresholdOf('m')).toBe(5000);
    expect(policy.keepOf('m')).toBe(2000);
    expect(policy.summaryOf('m')).toBeLessThan(policy.keepOf('m'));
  });

  it('keeps whole turns verbatim from the end, at least the last one', () => {
    const turn = (n: number): Item[] => [
      { id: `u${n}`, role: 'user', text: 'x'.repeat(40) },
      { id: `a${n}`, role: 'assistant', text: 'y'.repeat(40) },
    ];
    const items = [...turn(1), ...turn(2), ...turn(3)];
    // A turn costs 2 * (10 + 4) = 28 tokens.
    expect(tailStart(items, 60, false)).toBe(2);
    expect(tailStart(items, 10, false)).toBe(4);
    expect(tailStart(items, 10, true)).toBe(6);
    expect(tailStart(items, 1000, false)).toBe(0);
  });
});

describe('long threads', () => {
  it('summarises the oldest turns past the threshold; later turns send the summary and the latest turns verbatim', async () => {
    const core = await startedCore();
    await core.say(40);
    const condenses = core.backend.calls.filter((c) => c.method === 'condense');
    expect(condenses.length).toBeGreaterThan(1);
    // Each summary folds in the previous one: it is rolling, never made from the whole history again.
    expect(condenses[1]!.summary).toBeDefined();
    const session = await core.session();
    const condensed = condensedOf(session, 'b1')!;
    expect(condensed).toMatchObject({ kind: 'summary', by: 'model' });
    expect(condensed.covers).toBeGreaterThan(0);
    // Right after a summary, the branch's conversation is made again from the summary and the latest turns.
    const rebuilt = core.runs().filter((c) => c.summary !== undefined);
    expect(rebuilt.length).toBe(condenses.length);
    const last = rebuilt.at(-1)!;
    expect(last.history![0]!.role).toBe('user');
    expect(last.history!.length).toBeLessThan(2 * 40);
    // Whatever the summary stands for, the items after it are exactly the latest of the history.
    const all = await core.log.view(session, 'b1').read();
    expect(all.slice(condensed.covers).at(-1)?.text).toBe(all.at(-1)?.text);
  });

  it('tells the thread once that older messages are summarised', async () => {
    const core = await startedCore();
    await core.say(40);
    expect(core.presenter.notices.filter((n) => n.kind === 'history_condensed')).toEqual([
      { kind: 'history_condensed', how: 'summary' },
    ]);
  });

  it('gives alternatives the summary and the latest turns, and the winner inherits the summary', async () => {
    const core = await startedCore();
    await core.say(30);
    const before = condensedOf(await core.session(), 'b1')!;
    const vote = await core.threads.requestAlternatives({
      threadId: THREAD,
      userId: 'u1',
      isModerator: false,
      count: 2,
      prompt: { messageId: 'p', authorName: 'u1', text: 'u1: fork here' },
      styles: [],
      models: [],
      temperature: undefined,
    });
    const fork = core.backend.calls.find((c) => c.method === 'generateAlternatives')!;
    expect(fork.summary).toBe(before.text);
    expect(fork.history!.length).toBeLessThan(30);
    await core.threads.castBallot(THREAD, vote.id, 'u1', 'B');
    await core.threads.idle();
    const session = await core.session();
    const winner = vote.options.find((o) => o.letter === 'B')!.branchId!;
    expect(session.activeBranchId).toBe(winner);
    expect(condensedOf(session, winner)).toEqual(before);
  });

  it('answers again right after a compaction that took the message in, from the summary before it', async () => {
    const core = await startedCore();
    await core.say(30);
    const summary = condensedOf(await core.session(), 'b1')!;
    // The provider compacts while answering the next message: its compaction stands for that message too.
    const runTurn = core.backend.runTurn.bind(core.backend);
    core.backend.runTurn = async (request) => ({
      ...(await runTurn(request)),
      compaction: [{ type: 'compaction', encrypted_content: 'opaque' }],
    });
    await core.say(1);
    const compacted = condensedOf(await core.session(), 'b1')!;
    expect(compacted).toMatchObject({ kind: 'compaction', by: 'provider' });
    await core.threads.requestAlternatives({
      threadId: THREAD,
      userId: 'u1',
      isModerator: false,
      count: 2,
      prompt: undefined,
      styles: [],
      models: [],
      temperature: undefined,
    });
    const fork = core.backend.calls.find((c) => c.method === 'generateAlternatives')!;
    // Not the whole raw history: the summary the compaction replaced, and the turns after it.
    expect(fork.summary).toBe(summary.text);
    expect(fork.history!.length).toBeLessThan(30);
    expect(fork.input![0]!.text).toBe('u1: message 31');
  });

  it('never writes a summary made by a process that lost the thread’s lock', async () => {
    const core = await startedCore();
    const condense = core.backend.condense.bind(core.backend);
    core.backend.condense = async (request) => {
      const made = await condense(request);
      // Meanwhile a newer holder claimed the thread (a higher fencing token).
      await core.sessions.claim(THREAD, Number.MAX_SAFE_INTEGER);
      return made;
    };
    await core.say(20);
    expect(core.backend.calls.some((c) => c.method === 'condense')).toBe(true);
    const session = await core.session();
    expect(session.branches.b1!.condensed).toBeUndefined();
    expect(core.presenter.replies.at(-1)!.outcome).toMatchObject({
      kind: 'failed',
      error: { code: 'lock_lost' },
    });
  });

  it('summarises and tries once more when the provider says the context is too long', async () => {
    const core = await startedCore();
    await core.say(3);
    core.backend.failNext.push(new ContextTooLongError('too long', {}));
    await core.say(1);
    const runs = core.runs();
    expect(runs.at(-1)!.options![0]!.truncate).toBe(true);
    expect(runs.at(-1)!.summary).toBeDefined();
    expect(core.presenter.replies.at(-1)!.outcome?.kind).toBe('done');
  });

  it('lets moderators see and reset the summary; the latest turns go on verbatim', async () => {
    const core = await startedCore();
    await core.say(30);
    const mod = { userId: 'mod', isModerator: true };
    const shown = await core.threads.summary(THREAD, mod);
    expect(shown).toMatchObject({ branchId: 'b1', kind: 'summary' });
    expect(shown.text).not.toBe('');
    await expect(core.threads.resetSummary(THREAD, { userId: 'u2', isModerator: false })).rejects.toThrow(
      /moderators/,
    );
    expect(await core.threads.resetSummary(THREAD, mod)).toBe(true);
    expect(await core.threads.summary(THREAD, mod)).toMatchObject({
      text: '',
      by: 'reset',
      covers: shown.covers,
    });
    await core.say(1);
    // The next turn starts a conversation without the forgotten summary.
    expect(core.runs().at(-1)!.summary).toBe('');
  });
});
