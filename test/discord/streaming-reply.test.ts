import type { Client, SendableChannels } from 'discord.js';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { UpstreamError } from '../../src/core/errors.ts';
import type { ReplyHandle, ReplyOutcome } from '../../src/core/ports.ts';
import { createEditQueue, type EditQueue } from '../../src/discord/edit-queue.ts';
import { THREAD_EDIT_BUDGET } from '../../src/discord/presenter.ts';
import { splitMessage } from '../../src/discord/split-message.ts';
import { startStreamingReply } from '../../src/discord/streaming-reply.ts';
import { silentLogger } from '../fakes.ts';

interface FakeMessage {
  id: string;
  content: string;
  components: unknown[];
  deleted: boolean;
}

/** A channel that records what the reply posts, edits and deletes, in order, at the (fake) time it happens. */
function createRecordingChannel() {
  const messages: FakeMessage[] = [];
  const calls: {
    at: number;
    call: 'send' | 'edit' | 'delete' | 'typing';
    index: number;
    content?: string;
  }[] = [];
  const channel = {
    async send(options: { content: string; components: unknown[] }) {
      const index = messages.length;
      const message: FakeMessage = {
        id: `m${index}`,
        content: options.content,
        components: options.components,
        deleted: false,
      };
      messages.push(message);
      calls.push({ at: Date.now(), call: 'send', index, content: options.content });
      return {
        async edit(edit: { content: string; components: unknown[] }) {
          message.content = edit.content;
          message.components = edit.components;
          calls.push({ at: Date.now(), call: 'edit', index, content: edit.content });
        },
        async delete() {
          message.deleted = true;
          calls.push({ at: Date.now(), call: 'delete', index });
        },
      };
    },
    async sendTyping() {
      calls.push({ at: Date.now(), call: 'typing', index: -1 });
    },
  };
  return {
    channel: channel as unknown as SendableChannels,
    messages,
    calls,
    visible: () => messages.filter((m) => !m.deleted),
    hasStop: (message: FakeMessage | undefined) =>
      JSON.stringify(message?.components ?? []).includes('"stop:'),
  };
}

type Recording = ReturnType<typeof createRecordingChannel>;

async function start(recording: Recording, queue: EditQueue): Promise<ReplyHandle> {
  return startStreamingReply({
    client: {} as Client,
    channel: recording.channel,
    threadId: 't1',
    queue,
    logger: silentLogger,
    turnId: 'turn1',
    header: undefined,
    replyToMessageId: 'u1',
  });
}

/** Streams `text` in pieces of `size` characters, one every `everyMs` of fake time. */
async function stream(handle: ReplyHandle, text: string, size: number, everyMs: number): Promise<void> {
  for (let at = size; at < text.length + size; at += size) {
    handle.update(text.slice(0, at));
    await vi.advanceTimersByTimeAsync(everyMs);
  }
}

/** Finishes the reply, letting fake time pass for the edits still spaced out by the queue. */
async function finish(handle: ReplyHandle, outcome: ReplyOutcome): Promise<void> {
  let done = false;
  const finishing = handle.finish(outcome).finally(() => {
    done = true;
  });
  while (!done) await vi.advanceTimersByTimeAsync(250);
  await finishing;
}

const paragraphs = (count: number) =>
  Array.from({ length: count }, (_, i) => `Paragraph ${i}: ${'some words of the reply '.repeat(12)}`).join(
    '\n\n',
  );

describe('startStreamingReply', () => {
  let recording: Recording;
  let queue: EditQueue;

  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(0);
    recording = createRecordingChannel();
    queue = createEditQueue({ ...THREAD_EDIT_BUDGET, now: () => Date.now() });
  });

  afterEach(() => {
    vi.useRealTimers();
  });

  it('posts a reply that is done within the first-post delay whole, with no edit and no typing', async () => {
    const handle = await start(recording, queue);
    handle.update('Hello');
    handle.update('Hello there');
    await vi.advanceTimersByTimeAsync(100);
    await finish(handle, { kind: 'done', text: 'Hello there.', usage: undefined, refused: false });
    expect(recording.calls.map((c) => c.call)).toEqual(['send']);
    expect(recording.messages[0]?.content).toBe('Hello there.');
    expect(recording.hasStop(recording.messages[0])).toBe(false);
  });

  it('shows the latest text at most once per edit spacing, however many updates, then finishes it', async () => {
    const handle = await start(recording, queue);
    const text = 'word '.repeat(300);
    // 300 updates, one every 10 ms: three seconds of streaming.
    await stream(handle, text, 5, 10);
    // The first post waited 350 ms for more text.
    expect(recording.calls[0]).toMatchObject({ call: 'send', at: 350, content: `${'word '.repeat(35)} ▌` });
    expect(recording.hasStop(recording.messages[0])).toBe(true);
    const edits = recording.calls.filter((c) => c.call === 'edit');
    expect(edits.length).toBeGreaterThan(0);
    expect(edits.length).toBeLessThanOrEqual(3);
    for (const [i, edit] of edits.entries()) {
      expect(edit.content).toMatch(/▌$/);
      if (i > 0) expect(edit.at - edits[i - 1]!.at).toBeGreaterThanOrEqual(THREAD_EDIT_BUDGET.spacingMs ?? 0);
    }
    await finish(handle, { kind: 'done', text: text.trim(), usage: undefined, refused: false });
    expect(recording.messages.map((m) => m.content)).toEqual([text.trim()]);
    expect(recording.hasStop(recording.messages[0])).toBe(false);
  });

  it('posts new messages as a long reply outgrows them, and ends with the chunks of the final text', async () => {
    const handle = await start(recording, queue);
    const text = paragraphs(40);
    expect(splitMessage(text).length).toBeGreaterThan(4);
    await stream(handle, text, 7, 20);
    // While streaming, new messages followed the text: the last one shows its end, with the cursor.
    const postedWhileStreaming = recording.messages.length;
    expect(postedWhileStreaming).toBeGreaterThanOrEqual(splitMessage(text).length - 1);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(recording.messages.at(-1)?.content.endsWith('▌')).toBe(true);
    expect(recording.hasStop(recording.messages[0])).toBe(true);

    await finish(handle, { kind: 'done', text, usage: undefined, refused: false });
    expect(recording.visible().map((m) => m.content)).toEqual(splitMessage(text));
    expect(recording.hasStop(recording.messages[0])).toBe(false);
    // The first message, with its button, is finalised last.
    const lastWrite = recording.calls.filter((c) => c.call !== 'typing').at(-1);
    expect(lastWrite).toMatchObject({ call: 'edit', index: 0 });
    // Messages were posted in order, and no message was edited to what it already showed.
    expect(recording.calls.filter((c) => c.call === 'send').map((c) => c.index)).toEqual(
      recording.messages.map((_, i) => i),
    );
    const shownBefore = new Map<number, string>();
    for (const call of recording.calls) {
      if (call.call === 'typing' || call.call === 'delete') continue;
      if (call.call === 'edit' && call.index !== 0)
        expect(call.content).not.toBe(shownBefore.get(call.index));
      shownBefore.set(call.index, call.content ?? '');
    }
  });

  it('posts at once a first text that already needs two messages', async () => {
    const handle = await start(recording, queue);
    handle.update(paragraphs(12));
    await vi.advanceTimersByTimeAsync(0);
    expect(recording.messages.length).toBeGreaterThanOrEqual(2);
    await finish(handle, { kind: 'stopped', text: paragraphs(12), by: 'person' });
    expect(recording.visible().map((m) => m.content)).toEqual(splitMessage(`${paragraphs(12)}\n*⏹ stopped*`));
  });

  it('edits a message whose text got shorter, and deletes messages the final text no longer needs', async () => {
    const handle = await start(recording, queue);
    const text = paragraphs(20);
    await stream(handle, text, 50, 20);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(recording.messages.length).toBeGreaterThan(2);
    // The text shrinks (a reasoning tag hid its tail): the last message follows at its next edit.
    handle.update('Short now.');
    await vi.advanceTimersByTimeAsync(10_000);
    expect(recording.messages[0]?.content).toBe('Short now. ▌');
    const error = new UpstreamError('unavailable', 'The model is unavailable.', { retryable: true });
    await finish(handle, { kind: 'failed', text: 'Short now.', error, retryMessageId: 'u1' });
    expect(recording.visible().map((m) => m.content)).toEqual([`Short now.\n⚠️ ${error.userMessage}`]);
    expect(JSON.stringify(recording.messages[0]?.components)).toContain('"retry:t1:u1"');
  });
});
