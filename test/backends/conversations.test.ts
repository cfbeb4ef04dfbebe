import OpenAI from 'openai';
import { describe, expect, it, vi } from 'vitest';
import { createConversationsBackend } from '../../src/backends/conversations.ts';
import { UpstreamError } from '../../src/core/errors.ts';
import type { Item } from '../../src/core/model.ts';
import { type OpenAIEmulator, replyFor } from '../emulators/openai/index.ts';
import { assistant, options, user, view, withEmulator } from './fixtures.ts';

let emulator: OpenAIEmulator;
let client: OpenAI;

withEmulator((e, c) => {
  emulator = e;
  client = c;
});

const turn = (
  backend: ReturnType<typeof createConversationsBackend>,
  provider: { conversationId: string } | undefined,
  history: Item[],
  text: string,
) =>
  backend.runTurn({
    provider,
    history: view(history),
    input: [user(text)],
    options,
    signal: new AbortController().signal,
    onDelta() {},
  });
const messageTexts = (conversationId: string) =>
  ((emulator.conversation(conversationId)?.items ?? []) as { type: string; content: { text: string }[] }[])
    .filter((i) => i.type === 'message')
    .map((i) => i.content[0]!.text);

function historyOf(n: number): Item[] {
  return Array.from({ length: n }, (_, i) =>
    i % 2 === 0 ? user(`question ${i}`) : assistant(`answer ${i}`),
  );
}

describe('conversations backend', () => {
  it('keeps a branch as one conversation that holds every turn in order', async () => {
    const backend = createConversationsBackend(client);
    const first = await turn(backend, undefined, [], 'alice: hi');
    expect(first.text).toBe(
      replyFor({ model: options.model, messages: [{ role: 'user', text: 'alice: hi' }] }),
    );
    const second = await turn(
      backend,
      first.provider as { conversationId: string },
      [user('alice: hi'), assistant(first.text)],
      'bob: more',
    );
    expect(second.provider).toEqual(first.provider);
    expect(messageTexts(first.provider!.conversationId!)).toEqual([
      'alice: hi',
      first.text,
      'bob: more',
      second.text,
    ]);
  });

  it('copies a history into a new conversation in batches of at most 20 items', async () => {
    const backend = createConversationsBackend(client);
    const result = await turn(backend, undefined, historyOf(45), 'next');
    const creates = emulator.requests.filter((r) => r.route.startsWith('POST /v1/conversations'));
    expect(creates.map((r) => ((r.body as { items?: unknown[] }).items ?? []).length)).toEqual([20, 20, 5]);
    expect(messageTexts(result.provider!.conversationId!)).toHaveLength(47);
  });

  it('waits while another process holds the conversation instead of failing', async () => {
    const backend = createConversationsBackend(client);
    const first = await turn(backend, undefined, [], 'hi');
    const conversationId = first.provider!.conversationId!;
    emulator.setLatency({ firstTokenMs: 150 });
    const other = client.responses.create({
      model: options.model,
      conversation: conversationId,
      input: 'someone else',
    });
    const started = emulator.requests.length;
    await vi.waitFor(() => expect(emulator.requests.length).toBeGreaterThan(started));
    const ours = await turn(backend, { conversationId }, [], 'ours');
    await other;
    expect(ours.text).toContain('ours');
    expect(emulator.requests.some((r) => r.status === 400)).toBe(true); // it met the lock, and retried
  });

  it('generates alternatives without touching any conversation: the first, then the others from its first token', async () => {
    emulator.setLatency({ firstTokenMs: 100, tokensPerSecond: 50 });
    const backend = createConversationsBackend(client);
    const variants = ['formal', 'funny', 'terse'].map((style) => ({
      options: { ...options, instructions: style },
      signal: new AbortController().signal,
      onDelta() {},
    }));
    const results = await backend.generateAlternatives({
      history: view(historyOf(4)),
      input: [user('go')],
      variants,
    });
    expect(results.every((r) => r.status === 'fulfilled')).toBe(true);
    const calls = emulator.requests.filter((r) => r.route === 'POST /v1/responses');
    expect(calls).toHaveLength(3);
    // The others start once the first streams (so the provider has cached the prompt), while it still streams.
    const [lead, ...rest] = calls;
    expect(rest.every((c) => c.startedAt >= lead!.startedAt + 90)).toBe(true);
    expect(rest.every((c) => c.startedAt < (lead!.endedAt ?? 0))).toBe(true);
    expect(emulator.conversationIds()).toEqual([]);
  });

  it('moves a conversation to a fork with calls that do not grow with its length', async () => {
    const backend = createConversationsBackend(client);
    const callsFor = async (length: number) => {
      const from = historyOf(length);
      const first = await turn(backend, undefined, from, 'original question');
      const parent = [...from, user('original question'), assistant(first.text)];
      const to = [...parent.slice(0, length + 1), assistant('the better answer')];
      const before = emulator.requests.length;
      const moved = await backend.transfer({
        provider: first.provider!,
        from: view(parent),
        to: view(to),
        sharedPrefix: length + 1,
      });
      expect(messageTexts(moved!.conversationId!)).toEqual(to.map((i) => i.text));
      return emulator.requests.length - before;
    };
    expect(await callsFor(10)).toBe(await callsFor(200));
  });

  it('retries 429 and 5xx, then tells the thread clearly', async () => {
    const backend = createConversationsBackend(
      new OpenAI({ apiKey: emulator.apiKey, baseURL: emulator.baseURL, maxRetries: 2 }),
    );
    emulator.failNext({ route: 'POST /v1/responses', status: 429, retryAfterSeconds: 0 });
    expect((await turn(backend, undefined, [], 'hi')).text).toContain('hi');
    emulator.failNext({ route: 'POST /v1/responses', status: 500, times: 3 });
    const failure = await turn(backend, undefined, [], 'again').catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(UpstreamError);
    expect((failure as UpstreamError).failure).toBe('unavailable');
  });

  it('reports a refused key without repeating it', async () => {
    const backend = createConversationsBackend(
      new OpenAI({ apiKey: 'sk-wrong-secret', baseURL: emulator.baseURL, maxRetries: 0 }),
    );
    const failure = (await turn(backend, undefined, [], 'hi').catch(
      (error: unknown) => error,
    )) as UpstreamError;
    expect(failure.failure).toBe('auth');
    expect(failure.userMessage).not.toContain('sk-wrong-secret');
  });

  it('answers a resumed turn in a new conversation, out of reach of what an earlier attempt left or still adds', async () => {
    const backend = createConversationsBackend(client);
    const first = await turn(backend, undefined, [], 'alice: hi');
    const conversationId = first.provider!.conversationId!;
    // An earlier attempt got the input to OpenAI, and its reply may still arrive (a process that lost its lock).
    await client.conversations.items.create(conversationId, {
      items: [{ type: 'message', role: 'user', content: 'bob: again' }],
    });
    const history = [user('alice: hi'), assistant(first.text)];
    const second = await backend.runTurn({
      provider: { conversationId },
      history: view(history),
      input: [user('bob: again')],
      options,
      signal: new AbortController().signal,
      onDelta() {},
      resumed: true,
    });
    expect(second.text).toBe(
      replyFor({
        model: options.model,
        messages: [
          { role: 'user', text: 'alice: hi' },
          { role: 'assistant', text: first.text },
          { role: 'user', text: 'bob: again' },
        ],
      }),
    );
    const moved = second.provider!.conversationId!;
    expect(moved).not.toBe(conversationId);
    expect(messageTexts(moved)).toEqual(['alice: hi', first.text, 'bob: again', second.text]);
    // The old conversation is the core's to release once the turn is committed.
    expect(messageTexts(conversationId)).toEqual(['alice: hi', first.text, 'bob: again']);
  });

  it('keeps a stopped reply in the conversation as far as it got', async () => {
    emulator.setLatency({ tokensPerSecond: 200 });
    const backend = createConversationsBackend(client);
    const controller = new AbortController();
    let seen = '';
    const result = await backend.runTurn({
      provider: undefined,
      history: view([]),
      input: [user('!tokens 400')],
      options,
      signal: controller.signal,
      onDelta(delta) {
        seen += delta;
        if (seen.length > 20) controller.abort();
      },
    });
    expect(result.stopped).toBe(true);
    expect(messageTexts(result.provider!.conversationId!)).toEqual(['!tokens 400', result.text]);
  });
});
