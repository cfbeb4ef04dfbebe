import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { createResponsesBackend } from '../../src/backends/responses.ts';
import { UpstreamError } from '../../src/core/errors.ts';
import type { Item } from '../../src/core/model.ts';
import type { GenerationOptions, ModelBackend } from '../../src/core/ports.ts';
import { type OpenAIEmulator, type RecordedRequest, replyFor } from '../emulators/openai/index.ts';
import { options, user, view, withEmulator } from './fixtures.ts';

let emulator: OpenAIEmulator;
let client: OpenAI;

withEmulator((e, c) => {
  emulator = e;
  client = c;
});

const turn = (
  backend: ModelBackend,
  history: Item[],
  text: string,
  generation: GenerationOptions = options,
) =>
  backend.runTurn({
    provider: undefined,
    history: view(history),
    input: [user(text)],
    options: generation,
    signal: new AbortController().signal,
    onDelta() {},
  });
/** The assistant item the core records for a result. */
const replyItem = (result: { text: string; responseId: string | undefined; stopped: boolean }): Item => ({
  id: `a-${result.responseId}`,
  role: 'assistant',
  text: result.text,
  ...(result.responseId ? { responseId: result.responseId } : {}),
  ...(result.stopped ? { stopped: true } : {}),
});
const seen = (items: Item[]) => items.map((i) => ({ role: i.role, text: i.text }));
const calls = () => emulator.requests.filter((r) => r.route === 'POST /v1/responses');
type Body = {
  previous_response_id?: string;
  input: { content: string }[];
  instructions?: string;
  store?: boolean;
};
const bodyOf = (request: RecordedRequest | undefined) => request?.body as Body;

/** A branch of `turns` question/answer pairs, answered by the backend so every answer has its response. */
async function chain(backend: ModelBackend, turns: number): Promise<Item[]> {
  const history: Item[] = [];
  for (let i = 0; i < turns; i++) {
    const question = user(`question ${i}`);
    const result = await turn(backend, history, question.text);
    history.push(question, replyItem(result));
  }
  return history;
}

describe('responses backend', () => {
  it('chains a turn on the previous response and sends only the new input', async () => {
    const backend = createResponsesBackend(client);
    const first = await turn(backend, [], 'alice: hi');
    expect(first.provider).toBeUndefined();
    expect(first.responseId).toMatch(/^resp_/);
    expect(bodyOf(calls()[0]).previous_response_id).toBeUndefined();

    const history = [user('alice: hi'), replyItem(first)];
    const second = await turn(backend, history, 'bob: more');
    const body = bodyOf(calls()[1]);
    expect(body.previous_response_id).toBe(first.responseId);
    expect(body.input.map((i) => i.content)).toEqual(['bob: more']);
    expect(body.store).toBe(true);
    expect(second.text).toBe(
      replyFor({ model: options.model, messages: seen([...history, user('bob: more')]) }),
    );
    expect(second.provider).toBeUndefined();
  });

  it('passes the current instructions on every turn, since a chain does not inherit them', async () => {
    const backend = createResponsesBackend(client);
    const first = await turn(backend, [], 'hi', { ...options, instructions: 'formal' });
    const history = [user('hi'), replyItem(first)];
    const second = await turn(backend, history, 'again', { ...options, instructions: 'pirate' });
    expect(bodyOf(calls()[1]).instructions).toBe('pirate');
    expect(second.text).toBe(
      replyFor({ model: options.model, instructions: 'pirate', messages: seen([...history, user('again')]) }),
    );
    await turn(backend, [...history, user('again'), replyItem(second)], 'plain');
    expect(bodyOf(calls()[2]).instructions).toBeUndefined();
  });

  it('generates alternatives from the same previous response, then the others from its first token', async () => {
    const backend = createResponsesBackend(client);
    const history = await chain(backend, 2);
    const before = calls().length;
    emulator.setLatency({ firstTokenMs: 100, tokensPerSecond: 50 });
    const styles = ['formal', 'funny', 'terse'];
    const texts = styles.map(() => '');
    const results = await backend.generateAlternatives({
      history: view(history),
      input: [user('go')],
      variants: styles.map((style, index) => ({
        options: { ...options, instructions: style },
        signal: new AbortController().signal,
        onDelta(delta) {
          texts[index] += delta;
        },
      })),
    });
    const forks = calls().slice(before);
    expect(forks).toHaveLength(3);
    expect(new Set(forks.map((c) => bodyOf(c).previous_response_id))).toEqual(
      new Set([history.at(-1)!.responseId]),
    );
    // The others start once the first streams (so the provider has cached the prompt), while it still streams.
    const [lead, ...rest] = forks;
    expect(rest.every((c) => c.startedAt >= lead!.startedAt + 90)).toBe(true);
    expect(rest.every((c) => c.startedAt < (lead!.endedAt ?? 0))).toBe(true);
    for (const [index, result] of results.entries()) {
      expect(result.status).toBe('fulfilled');
      const value = (result as PromiseFulfilledResult<{ text: string; responseId: string }>).value;
      expect(value.text).toBe(
        replyFor({
          model: options.model,
          instructions: styles[index],
          messages: seen([...history, user('go')]),
        }),
      );
      expect(texts[index]).toBe(value.text);
      expect(value.responseId).toMatch(/^resp_/);
    }
  });

  it('forks with provider calls that do not grow with the history', async () => {
    const backend = createResponsesBackend(client);
    const forkCost = async (turns: number) => {
      const history = await chain(backend, turns);
      const before = emulator.requests.length;
      const results = await backend.generateAlternatives({
        history: view(history),
        input: [user('fork here')],
        variants: ['a', 'b'].map((style) => ({
          options: { ...options, instructions: style },
          signal: new AbortController().signal,
          onDelta() {},
        })),
      });
      expect(results.every((r) => r.status === 'fulfilled')).toBe(true);
      const made = emulator.requests.slice(before);
      return { requests: made.length, inputItems: made.map((r) => bodyOf(r).input.length) };
    };
    const short = await forkCost(2);
    expect(short).toEqual({ requests: 2, inputItems: [1, 1] });
    expect(await forkCost(40)).toEqual(short);
    expect(
      await backend.transfer({ provider: {}, from: view([]), to: view([]), sharedPrefix: 0 }),
    ).toBeUndefined();
  });

  it('goes on after a stopped reply by sending it after the last finished response', async () => {
    const backend = createResponsesBackend(client);
    const history = await chain(backend, 1);
    emulator.setLatency({ tokensPerSecond: 200 });
    const controller = new AbortController();
    let shown = '';
    const stopped = await backend.runTurn({
      provider: undefined,
      history: view(history),
      input: [user('!tokens 400')],
      options,
      signal: controller.signal,
      onDelta(delta) {
        shown += delta;
        if (shown.length > 20) controller.abort();
      },
    });
    expect(stopped.stopped).toBe(true);
    expect(stopped.responseId).toMatch(/^resp_/);
    emulator.setLatency({});

    const longer = [...history, user('!tokens 400'), replyItem(stopped)];
    const next = await turn(backend, longer, 'and now?');
    const body = bodyOf(calls().at(-1));
    expect(body.previous_response_id).toBe(history.at(-1)!.responseId);
    expect(body.input.map((i) => i.content)).toEqual(['!tokens 400', stopped.text, 'and now?']);
    expect(next.text).toBe(replyFor({ model: options.model, messages: seen([...longer, user('and now?')]) }));
  });

  it('starts a new chain from the whole history when the previous response is gone', async () => {
    const backend = createResponsesBackend(client);
    const history: Item[] = [
      user('hi'),
      { id: 'a', role: 'assistant', text: 'hello', responseId: 'resp_deleted_long_ago' },
    ];
    const result = await turn(backend, history, 'still there?');
    expect(calls().map((c) => c.status)).toEqual([400, 200]);
    expect(bodyOf(calls()[1]).previous_response_id).toBeUndefined();
    expect(result.text).toBe(
      replyFor({ model: options.model, messages: seen([...history, user('still there?')]) }),
    );
  });

  it('retries a rate limit, and reports a refused key as such', async () => {
    const backend = createResponsesBackend(client);
    emulator.failNext({ route: 'POST /v1/responses', status: 429, retryAfterSeconds: 0 });
    expect((await turn(backend, [], 'hi')).text).toContain('hi');
    const refused = createResponsesBackend(
      new OpenAI({ apiKey: 'sk-wrong-secret', baseURL: emulator.baseURL, maxRetries: 0 }),
    );
    const failure = (await turn(refused, [], 'hi').catch((error: unknown) => error)) as UpstreamError;
    expect(failure).toBeInstanceOf(UpstreamError);
    expect(failure.failure).toBe('auth');
  });
});
