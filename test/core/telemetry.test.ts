// What the core reports through its Telemetry port, recorded by a fake: one event per fact, with its numbers.
import { describe, expect, it } from 'vitest';
import { UpstreamError } from '../../src/core/errors.ts';
import { createHistoryLog } from '../../src/core/history-log.ts';
import { createLocalLockService } from '../../src/core/local-lock.ts';
import { createRunningTurns } from '../../src/core/running-turns.ts';
import { createSessionRepository } from '../../src/core/sessions.ts';
import type { Telemetry } from '../../src/core/telemetry.ts';
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

type Event = { [K in keyof Telemetry]: { type: K } & Parameters<Telemetry[K]>[0] }[keyof Telemetry];

function createRecordingTelemetry(): Telemetry & { events: Event[] } {
  const events: Event[] = [];
  return {
    events,
    turn: (event) => void events.push({ type: 'turn', ...event }),
    tokens: (event) => void events.push({ type: 'tokens', ...event }),
    alternatives: (event) => void events.push({ type: 'alternatives', ...event }),
    vote: (event) => void events.push({ type: 'vote', ...event }),
    error: (event) => void events.push({ type: 'error', ...event }),
    queueDepth: (event) => void events.push({ type: 'queueDepth', ...event }),
  };
}

async function createCore() {
  const store = createMemoryStore();
  const backend = createFakeBackend();
  const clock = createManualClock();
  const telemetry = createRecordingTelemetry();
  const threads = createThreadService({
    sessions: createSessionRepository(store),
    log: createHistoryLog(store),
    store,
    backend,
    locks: createLocalLockService(),
    presenter: createRecordingPresenter(),
    running: createRunningTurns(),
    clock,
    logger: silentLogger,
    telemetry,
    limits: { maxAlternatives: 5, cooldownMs: 0 },
    defaults: TEST_SETTINGS,
  });
  await threads.startThread({ threadId: THREAD, guildId: 'g', userId: 'u1' });
  let n = 0;
  const say = (text: string) =>
    threads.receive({ threadId: THREAD, messageId: `m${++n}`, authorId: 'u1', authorName: 'u1', text });
  return { backend, clock, telemetry, threads, turns: threads, say };
}

const ofType = <T extends Event['type']>(events: Event[], type: T) =>
  events.filter((e): e is Extract<Event, { type: T }> => e.type === type);

describe('telemetry from the core', () => {
  it('reports a turn with its queue wait, its tokens, and the queue going back to empty', async () => {
    const core = await createCore();
    await core.say('one');
    await core.turns.idle();

    // The manual clock stands still: every duration is 0, and the first token came (the fake streams one delta).
    expect(ofType(core.telemetry.events, 'turn')).toEqual([
      {
        type: 'turn',
        backend: 'conversations',
        model: 'm',
        outcome: 'done',
        queueWaitMs: 0,
        firstTokenMs: 0,
        totalMs: 0,
      },
    ]);
    expect(ofType(core.telemetry.events, 'tokens')).toEqual([
      { type: 'tokens', model: 'm', kind: 'input', count: 1 },
      { type: 'tokens', model: 'm', kind: 'output', count: 5 },
    ]);
    const depths = ofType(core.telemetry.events, 'queueDepth').map((e) => e.waiting);
    expect(depths[0]).toBe(1);
    expect(depths.at(-1)).toBe(0);
    expect(ofType(core.telemetry.events, 'error')).toEqual([]);
  });

  it('reports a failed turn and the error people saw', async () => {
    const core = await createCore();
    core.backend.failNext.push(new UpstreamError('rate_limited', 'Slow down.', { retryable: true }));
    await core.say('one');
    await core.turns.idle();
    expect(ofType(core.telemetry.events, 'turn').map((e) => [e.outcome, e.firstTokenMs])).toEqual([
      ['failed', undefined],
    ]);
    expect(ofType(core.telemetry.events, 'error')).toEqual([
      { type: 'error', kind: 'upstream_rate_limited' },
    ]);
    expect(ofType(core.telemetry.events, 'tokens')).toEqual([]);
  });

  it('reports a fork when its vote opens, each alternative’s tokens, a failed alternative, and the vote closing', async () => {
    const core = await createCore();
    await core.say('one');
    await core.turns.idle();
    core.telemetry.events.length = 0;
    core.backend.failNext.push(new UpstreamError('unavailable', 'Down.', { retryable: true }));
    const vote = await core.threads.requestAlternatives({
      threadId: THREAD,
      userId: 'u1',
      isModerator: false,
      count: 3,
      prompt: { messageId: 'p1', authorName: 'u1', text: 'go' },
      styles: [],
      models: ['m', 'other'],
      temperature: undefined,
    });
    expect(ofType(core.telemetry.events, 'alternatives')).toEqual([
      { type: 'alternatives', count: 3, outcome: 'opened' },
    ]);
    expect(ofType(core.telemetry.events, 'error')).toEqual([{ type: 'error', kind: 'upstream_unavailable' }]);
    // The first variant failed; the other two were billed, each under its own model.
    expect(
      ofType(core.telemetry.events, 'tokens')
        .filter((e) => e.kind === 'output')
        .map((e) => e.model),
    ).toEqual(['other', 'm']);

    await core.threads.castBallot(THREAD, vote.id, 'u2', 'B');
    await core.threads.idle();
    expect(ofType(core.telemetry.events, 'vote')).toEqual([
      { type: 'vote', outcome: 'closed', reason: 'quorum' },
    ]);
  });
});
