import { describe, expect, it } from 'vitest';
import {
  type AttachmentLimits,
  createAttachmentStore,
  referencedBlobs,
  withoutAttachments,
} from '../../src/core/attachments.ts';
import { createHistoryLog } from '../../src/core/history-log.ts';
import type { Item, LogChunk, ThreadSession } from '../../src/core/model.ts';
import { createSessionRepository } from '../../src/core/sessions.ts';
import { createManualClock, createMemoryStore } from '../fakes.ts';
import { pdf, png } from '../fixtures/media.ts';

const limits: AttachmentLimits = {
  imageMaxBytes: 4096,
  fileMaxBytes: 8192,
  perMessage: 2,
  threadMaxBytes: 10_000,
};
const image = (name: string, bytes: Buffer) => ({ name, mime: 'image/png', kind: 'image' as const, bytes });

function setup() {
  const store = createMemoryStore();
  const clock = createManualClock();
  return { store, clock, attachments: createAttachmentStore({ store, clock, limits }) };
}

describe('attachments', () => {
  it('stores an image once by its sha256, for every thread that posts it', async () => {
    const { store, attachments } = setup();
    const red = png([255, 0, 0]);
    const a = await attachments.admit('t1', [image('red.png', red)]);
    const b = await attachments.admit('t2', [image('copy.png', red)]);
    expect(a.refused).toEqual([]);
    expect(a.parts[0]).toMatchObject({ kind: 'image', mime: 'image/png', name: 'red.png' });
    const blobId = (a.parts[0] as { blobId: string }).blobId;
    expect((b.parts[0] as { blobId: string }).blobId).toBe(blobId);
    expect([...store.data.keys()].filter((k) => k.startsWith('blob:'))).toEqual([`blob:${blobId}`]);
    expect(await attachments.read(blobId)).toEqual({ mime: 'image/png', base64: red.toString('base64') });
  });

  it('refuses what is over a limit: size per file, files per message, total per thread', async () => {
    const { attachments } = setup();
    const big = png([0, 0, 0], { pad: 5000 });
    const first = await attachments.admit('t', [
      image('big.png', big),
      { name: 'doc.pdf', mime: 'application/pdf', kind: 'file', bytes: pdf('x') },
      image('third.png', png([1, 1, 1])),
    ]);
    expect(first.refused).toEqual([
      { name: 'big.png', reason: 'too_large', limit: 4096 },
      { name: 'third.png', reason: 'too_many', limit: 2 },
    ]);
    expect(first.parts.map((p) => p.kind)).toEqual(['file']);
    // 10 000 bytes per thread: a few images of ~3 kB fit, the next does not.
    const refused: string[] = [];
    for (let i = 0; i < 5; i++) {
      const result = await attachments.admit('t', [image(`p${i}.png`, png([i, 0, 0], { pad: 3000 }))]);
      refused.push(...result.refused.map((r) => `${r.name}:${r.reason}`));
    }
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.every((r) => r.endsWith(':thread_full'))).toBe(true);
  });

  it('sweeps the blobs no branch or message refers to, after a grace period, and deletes a blob no thread holds', async () => {
    const { store, clock, attachments } = setup();
    const kept = await attachments.admit('t', [image('kept.png', png([1, 0, 0]))]);
    const dropped = await attachments.admit('t', [image('dropped.png', png([2, 0, 0]))]);
    await attachments.admit('other', [image('dropped.png', png([2, 0, 0]))]);
    const keptId = (kept.parts[0] as { blobId: string }).blobId;
    const droppedId = (dropped.parts[0] as { blobId: string }).blobId;
    expect(await attachments.sweep('t', new Set([keptId]))).toBe(0); // too recent: its message may be on its way
    clock.advance(2 * 60 * 60_000);
    expect(await attachments.sweep('t', new Set([keptId]))).toBe(1);
    expect(await attachments.read(keptId)).toBeDefined();
    expect(await attachments.read(droppedId)).toBeDefined(); // another thread still holds it
    expect(await attachments.sweep('other', new Set())).toBe(1);
    expect(await attachments.read(droppedId)).toBeUndefined();
    expect(store.data.has(`blob:${droppedId}`)).toBe(false);
  });

  it('finds the blobs a thread refers to in every branch and its waiting messages', async () => {
    const store = createMemoryStore();
    const log = createHistoryLog(store);
    const item = (id: string, blobId?: string): Item => ({
      id,
      role: 'user',
      text: id,
      ...(blobId ? { parts: [{ kind: 'image', blobId, mime: 'image/png', name: `${id}.png` }] } : {}),
    });
    await log.write('t', 'b1', 0, [item('a', 'x1'), item('b')], 0);
    await log.write('t', 'b2', 0, [item('c', 'x2')], 0);
    const branch = (id: string, parentId: string | undefined, ownItems: number) => ({
      id,
      parentId,
      forkPoint: parentId ? 1 : 0,
      origin: { kind: 'start' as const },
      createdBy: 'u',
      createdAt: 0,
      ownItems,
      provider: undefined,
    });
    const session = {
      threadId: 't',
      branches: { b1: branch('b1', undefined, 2), b2: branch('b2', 'b1', 1) },
      inbox: [
        {
          messageId: 'm',
          authorId: 'u',
          authorName: 'u',
          text: 'u: hi',
          receivedAt: 0,
          attempts: 0,
          parts: [{ kind: 'file', blobId: 'x3', mime: 'application/pdf', name: 'd.pdf' }],
        },
      ],
      failed: [],
    } as unknown as ThreadSession;
    expect([...(await referencedBlobs(session, log))].sort()).toEqual(['x1', 'x2', 'x3']);
  });

  it('leaves images and files out for a model that takes none, keeping the text', () => {
    const item: Item = {
      id: 'i',
      role: 'user',
      text: 'alice: look',
      parts: [{ kind: 'image', blobId: 'x', mime: 'image/png', name: 'a.png' }],
    };
    expect(withoutAttachments([item])).toEqual([{ id: 'i', role: 'user', text: 'alice: look' }]);
  });

  it('reads a thread and history saved by the previous version (2) as they are', async () => {
    const store = createMemoryStore();
    const sessions = createSessionRepository(store);
    const log = createHistoryLog(store);
    const chunk: LogChunk = {
      version: 2 as 3,
      fence: 0,
      items: [{ id: 'a', role: 'user', text: 'alice: hi' }],
    };
    await store.set('log:t:b1:0', chunk);
    await store.set('thread:t', {
      version: 2,
      threadId: 't',
      guildId: undefined,
      backend: 'conversations',
      createdBy: 'u',
      createdAt: 0,
      activeBranchId: 'b1',
      branches: {
        b1: {
          id: 'b1',
          parentId: undefined,
          forkPoint: 0,
          origin: { kind: 'start' },
          createdBy: 'u',
          createdAt: 0,
          ownItems: 1,
          provider: undefined,
        },
      },
      nextBranchNumber: 2,
      settings: {},
      inbox: [],
      failed: [],
      vote: undefined,
      activity: {},
      fence: 0,
      forkHistory: [],
    });
    const session = (await sessions.get('t'))!;
    expect(session.version).toBe(3);
    expect(await log.view(session, 'b1').read()).toEqual([{ id: 'a', role: 'user', text: 'alice: hi' }]);
    // The next write stores version 3, the old items kept.
    await log.write('t', 'b1', 1, [{ id: 'b', role: 'assistant', text: 'hello' }], 0);
    const stored = (await store.get<LogChunk>('log:t:b1:0'))!;
    expect(stored.version).toBe(3);
    expect(stored.items.map((i) => i.id)).toEqual(['a', 'b']);
    const updated = await sessions.update('t', (s) => ({ ...s, nextBranchNumber: 3 }));
    expect(updated.version).toBe(3);
  });
});
