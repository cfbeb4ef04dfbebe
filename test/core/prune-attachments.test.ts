import { describe, expect, it } from 'vitest';
import { createAttachmentStore } from '../../src/core/attachments.ts';
import { createHistoryLog } from '../../src/core/history-log.ts';
import { createLocalLockService } from '../../src/core/local-lock.ts';
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
import { png } from '../fixtures/media.ts';

const THREAD = 'thread-1';
const mod = { userId: 'mod', isModerator: true };

describe('attachments of pruned branches', () => {
  it('a prune deletes the images only pruned branches held, and keeps those the thread still uses', async () => {
    const store = createMemoryStore();
    const clock = createManualClock();
    const attachments = createAttachmentStore({
      store,
      clock,
      limits: { imageMaxBytes: 1e6, fileMaxBytes: 1e6, perMessage: 4, threadMaxBytes: 1e7 },
    });
    const backend = createFakeBackend();
    const threads = createThreadService({
      sessions: createSessionRepository(store),
      log: createHistoryLog(store),
      store,
      locks: createLocalLockService(),
      backend,
      presenter: createRecordingPresenter(),
      running: createRunningTurns(),
      clock,
      logger: silentLogger,
      telemetry: noTelemetry,
      attachments,
      defaults: TEST_SETTINGS,
      limits: { maxAlternatives: 5, cooldownMs: 0 },
    });
    await threads.startThread({ threadId: THREAD, guildId: 'g', userId: 'u1' });
    const post = async (id: string, bytes: Buffer) => {
      const { parts } = await attachments.admit(THREAD, [
        { name: `${id}.png`, mime: 'image/png', kind: 'image', bytes },
      ]);
      await threads.receive({
        threadId: THREAD,
        messageId: id,
        authorId: 'u1',
        authorName: 'u1',
        text: id,
        parts,
      });
      await threads.idle();
      return parts[0]!.kind === 'text' ? '' : parts[0]!.blobId;
    };
    const old = await post('m1', png([1, 0, 0]));
    // The model was given the image: the turn's input carries it.
    expect(backend.calls.at(-1)).toMatchObject({
      method: 'runTurn',
      input: [{ text: 'u1: m1', parts: [{ kind: 'image', blobId: old, mime: 'image/png', name: 'm1.png' }] }],
    });
    await threads.moderate(THREAD, { action: 'reset', to: 'root' }, mod);
    const kept = await post('m2', png([2, 0, 0]));
    clock.advance(2 * 60 * 60_000);
    await threads.moderate(THREAD, { action: 'prune' }, mod);
    expect(await attachments.read(old)).toBeUndefined();
    expect(await attachments.read(kept)).toBeDefined();
  });
});
