import { describe, expect, it } from 'vitest';
import { createHistoryLog } from '../../src/core/history-log.ts';
import { createLocalLockService } from '../../src/core/local-lock.ts';
import { createRunningTurns } from '../../src/core/running-turns.ts';
import { createSessionRepository } from '../../src/core/sessions.ts';
import { noTelemetry } from '../../src/core/telemetry.ts';
import { createThreadService } from '../../src/core/threads.ts';
import { branchLabel } from '../../src/discord/wording.ts';
import {
  createFakeBackend,
  createManualClock,
  createMemoryStore,
  createRecordingPresenter,
  silentLogger,
  TEST_SETTINGS,
} from '../fakes.ts';

const THREAD = 'old-thread';
const settings = { ...TEST_SETTINGS, quorum: 5 };
const item = (id: string, role: 'user' | 'assistant', text: string) => ({ id, role, text });
const branchV1 = (
  id: string,
  parentId: string | undefined,
  forkPoint: number,
  ownItems: number,
  label: string,
) => ({
  id,
  parentId,
  forkPoint,
  label,
  createdBy: 'u1',
  createdAt: 1,
  ownItems,
  provider: undefined,
});

/** What threadfork 0.1 left in its store: a thread that forked once (B won), then opened a second vote. */
function storeWithVersion1Thread() {
  const store = createMemoryStore();
  store.data.set(`thread:${THREAD}`, {
    version: 1,
    threadId: THREAD,
    guildId: 'g',
    backend: 'conversations',
    createdBy: 'u1',
    createdAt: 1,
    activeBranchId: 'b3',
    branches: {
      b1: branchV1('b1', undefined, 0, 2, 'start'),
      b2: branchV1('b2', 'b1', 2, 2, 'alternative A · formal'),
      b3: branchV1('b3', 'b1', 2, 2, 'alternative B · default'),
      b4: branchV1('b4', 'b3', 4, 2, 'alternative A · default'),
      b5: branchV1('b5', 'b3', 4, 2, 'alternative B · funny'),
    },
    nextBranchNumber: 6,
    settings,
    inbox: [],
    failed: [],
    openVoteId: 'v2',
    lockFence: 1_700_000_000_000,
    forkHistory: [{ before: 'b1', voteId: 'v1', at: 2 }],
  });
  store.data.set(`items:${THREAD}:b1`, {
    version: 1,
    items: [item('1', 'user', 'u1: hi'), item('2', 'assistant', 'hello')],
  });
  store.data.set(`items:${THREAD}:b2`, {
    version: 1,
    items: [item('3', 'user', 'u1: go'), item('4', 'assistant', 'A1')],
  });
  store.data.set(`items:${THREAD}:b3`, {
    version: 1,
    items: [item('3', 'user', 'u1: go'), item('5', 'assistant', 'B1')],
  });
  store.data.set(`items:${THREAD}:b4`, {
    version: 1,
    items: [item('6', 'user', 'u1: again'), item('7', 'assistant', 'A2')],
  });
  store.data.set(`items:${THREAD}:b5`, {
    version: 1,
    items: [item('6', 'user', 'u1: again'), item('8', 'assistant', 'B2')],
  });
  store.data.set('vote:v2', {
    version: 1,
    id: 'v2',
    threadId: THREAD,
    invokerId: 'u1',
    parentBranchId: 'b3',
    forkPoint: 4,
    options: [
      { letter: 'A', branchId: 'b4', label: 'default', status: 'ok' },
      { letter: 'B', branchId: 'b5', label: 'funny', status: 'ok' },
    ],
    ballots: { u1: 'B' },
    quorum: 2,
    deadline: Number.MAX_SAFE_INTEGER,
    status: 'open',
    winner: undefined,
    closedBy: undefined,
    ballotMessageId: 'ballot-1',
    createdAt: 3,
  });
  return store;
}

describe('a thread saved by threadfork 0.1 (schema version 1)', () => {
  it('keeps working: its history, branches and open vote carry over, and the old records are gone', async () => {
    const store = storeWithVersion1Thread();
    const sessions = createSessionRepository(store);
    const log = createHistoryLog(store);
    const backend = createFakeBackend();
    const threads = createThreadService({
      sessions,
      log,
      store,
      locks: createLocalLockService(),
      backend,
      presenter: createRecordingPresenter(),
      running: createRunningTurns(),
      clock: createManualClock(),
      logger: silentLogger,
      telemetry: noTelemetry,
      limits: { maxAlternatives: 5, cooldownMs: 0 },
      defaults: settings,
    });

    store.data.set('index:open-votes', ['v2']);
    await threads.resume();
    expect(await sessions.threadsWithWork()).toEqual([THREAD]);
    expect(store.data.has('index:open-votes')).toBe(false);
    const tree = await threads.listBranches(THREAD);
    expect(tree.map((b) => [b.id, branchLabel(b), b.active])).toEqual([
      ['b1', 'start', false],
      ['b2', 'alternative A · formal', false],
      ['b3', 'alternative B · default', true],
      ['b4', 'alternative A · default', false],
      ['b5', 'alternative B · funny', false],
    ]);
    // The open vote still counts its ballot, and a second one closes it on B.
    const { vote } = await threads.castBallot(THREAD, 'v2', 'u2', 'B');
    expect(vote).toMatchObject({ status: 'closed', winner: 'B' });
    await threads.idle();
    await threads.receive({
      threadId: THREAD,
      messageId: 'm9',
      authorId: 'u1',
      authorName: 'u1',
      text: 'still here?',
    });
    await threads.idle();
    const session = (await sessions.get(THREAD))!;
    expect(session.activeBranchId).toBe('b5');
    expect((await log.view(session, 'b5').read()).map((i) => i.text)).toEqual([
      'u1: hi',
      'hello',
      'u1: go',
      'B1',
      'u1: again',
      'B2',
      'u1: still here?',
      'reply to "u1: still here?" after 6 items',
    ]);
    expect(
      [...store.data.keys()].filter((key) => key.startsWith('items:') || key.startsWith('vote:')),
    ).toEqual([]);
  });
});
