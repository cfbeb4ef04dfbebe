import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { chatMessages, createChatBackend, estimateTokens } from '../../src/backends/chat.ts';
import { UpstreamError } from '../../src/core/errors.ts';
import type { Item } from '../../src/core/model.ts';
import type { Generated, GenerationOptions, ModelBackend } from '../../src/core/ports.ts';
import {
  countTokens,
  type OpenAIEmulator,
  type RecordedRequest,
  type ReplyMessage,
  replyFor,
} from '../emulators/openai/index.ts';
import { assistant, options, user, view, withEmulator } from './fixtures.ts';

let emulator: OpenAIEmulator;
let client: OpenAI;

withEmulator((e, c) => {
  emulator = e;
  client = c;
});

const big = { contextTokens: 100_000 };
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
const calls = () => emulator.requests.filter((r) => r.route === 'POST /v1/chat/completions');
type Body = {
  messages: { role: string; content: string }[];
  n?: number;
  stream_options?: { include_usage?: boolean };
};
const bodyOf = (request: RecordedRequest | undefined) => request?.body as Body;
const seen = (items: Item[], instructions?: string): ReplyMessage[] => [
  ...(instructions ? [{ role: 'system' as const, text: instructions }] : []),
  ...items.map((i) => ({ role: i.role, text: i.text })),
];
const historyOf = (n: number) =>
  Array.from({ length: n }, (_, i) => (i % 2 === 0 ? user(`question ${i}`) : assistant(`answer ${i}`)));
const variant = (generation: GenerationOptions, collect?: (delta: string) => void) => ({
  options: generation,
  signal: new AbortController().signal,
  onDelta: collect ?? (() => {}),
});
const values = (results: PromiseSettledResult<Generated>[]) =>
  results.map((r) => {
    if (r.status === 'rejected') throw r.reason;
    return r.value;
  });

describe('chat backend', () => {
  it('sends the system message and the whole history, streaming with usage', async () => {
    const backend = createChatBackend(client, big);
    const history = historyOf(4);
    let streamed = '';
    const result = await backend.runTurn({
      provider: undefined,
      history: view(history),
      input: [user('alice: next')],
      options: { ...options, instructions: 'be brief' },
      signal: new AbortController().signal,
      onDelta(delta) {
        streamed += delta;
      },
    });
    const body = bodyOf(calls()[0]);
    expect(body.messages).toEqual([
      { role: 'system', content: 'be brief' },
      ...history.map((i) => ({ role: i.role, content: i.text })),
      { role: 'user', content: 'alice: next' },
    ]);
    expect(body.stream_options).toEqual({ include_usage: true });
    const expected = replyFor({
      model: options.model,
      messages: seen([...history, user('alice: next')], 'be brief'),
    });
    expect(result.text).toBe(expected);
    expect(streamed).toBe(expected);
    expect(result.usage.outputTokens).toBe(countTokens(expected));
    expect(result.usage.inputTokens).toBeGreaterThan(0);
    expect(result.provider).toBeUndefined();
    expect(result.responseId).toBeUndefined();
  });

  it('drops the oldest turns to fit a small budget, keeping the system message and the input', async () => {
    const history = historyOf(10); // 5 turns of 2 items
    const input = [user('the new question')];
    const turnCost = estimateTokens('question 8') + estimateTokens('answer 9');
    const fixed = estimateTokens('be brief') + estimateTokens('the new question');
    // Room for exactly the last two turns.
    const messages = chatMessages(history, input, 'be brief', fixed + 2 * turnCost + 1);
    expect(messages).toEqual([
      { role: 'system', content: 'be brief' },
      ...history.slice(6).map((i) => ({ role: i.role, content: i.text })),
      { role: 'user', content: 'the new question' },
    ]);
    // A budget smaller than the system message and the input: they go anyway, without history.
    expect(chatMessages(history, input, 'be brief', 1)).toEqual([
      { role: 'system', content: 'be brief' },
      { role: 'user', content: 'the new question' },
    ]);
    // No input (an alternative to the last message): the last turn is what is answered and stays.
    expect(chatMessages(history.slice(0, 9), [], undefined, 1)).toEqual([
      { role: 'user', content: 'question 8' },
    ]);

    const backend = createChatBackend(client, { contextTokens: fixed + 2 * turnCost + 1 });
    const result = await turn(backend, history, 'the new question', { ...options, instructions: 'be brief' });
    expect(bodyOf(calls()[0]).messages).toEqual(messages);
    expect(result.text).toBe(
      replyFor({ model: options.model, messages: seen([...history.slice(6), ...input], 'be brief') }),
    );
  });

  it('asks for alternatives with shared settings in one request with n, paying the prompt once', async () => {
    const backend = createChatBackend(client, big);
    const history = historyOf(4);
    const streamed = ['', '', ''];
    const results = values(
      await backend.generateAlternatives({
        history: view(history),
        input: [user('go')],
        variants: streamed.map((_, i) =>
          variant(options, (delta) => {
            streamed[i] += delta;
          }),
        ),
      }),
    );
    expect(calls()).toHaveLength(1);
    expect(bodyOf(calls()[0]).n).toBe(3);
    const messages = seen([...history, user('go')]);
    for (const [i, result] of results.entries()) {
      expect(result.text).toBe(replyFor({ model: options.model, messages, choiceIndex: i }));
      expect(streamed[i]).toBe(result.text);
    }
    expect(results[0]!.usage.inputTokens).toBe(messages.reduce((sum, m) => sum + countTokens(m.text), 0));
    expect(results.slice(1).map((r) => r.usage.inputTokens)).toEqual([0, 0]);
    const completion = results.reduce((sum, r) => sum + countTokens(r.text), 0);
    expect(results.reduce((sum, r) => sum + r.usage.outputTokens, 0)).toBe(completion);
  });

  it('sends alternatives with different settings as separate requests in parallel', async () => {
    emulator.setLatency({ firstTokenMs: 100 });
    const backend = createChatBackend(client, big);
    const results = values(
      await backend.generateAlternatives({
        history: view(historyOf(2)),
        input: [user('go')],
        variants: [
          variant(options),
          variant({ ...options, instructions: 'funny' }),
          variant(options),
          variant({ ...options, model: 'gpt-4.1', temperature: 0.5 }),
        ],
      }),
    );
    expect(calls()).toHaveLength(3);
    expect(calls().map((c) => bodyOf(c).n)).toEqual([2, undefined, undefined]);
    const lastStart = Math.max(...calls().map((c) => c.startedAt));
    expect(calls().every((c) => (c.endedAt ?? 0) > lastStart)).toBe(true);
    const messages = seen([...historyOf(2), user('go')]);
    expect(results.map((r) => r.text)).toEqual([
      replyFor({ model: options.model, messages, choiceIndex: 0 }),
      replyFor({ model: options.model, messages: seen([...historyOf(2), user('go')], 'funny') }),
      replyFor({ model: options.model, messages, choiceIndex: 1 }),
      replyFor({ model: 'gpt-4.1', messages, temperature: 0.5 }),
    ]);
  });

  it('falls back to single requests when the server refuses n > 1, and remembers it', async () => {
    emulator.setChatRejectsMultipleChoices(true);
    const backend = createChatBackend(client, big);
    const ask = () =>
      backend.generateAlternatives({
        history: view([]),
        input: [user('go')],
        variants: [variant(options), variant(options)],
      });
    const first = values(await ask());
    expect(calls().map((c) => [c.status, bodyOf(c).n])).toEqual([
      [400, 2],
      [200, undefined],
      [200, undefined],
    ]);
    const reply = replyFor({ model: options.model, messages: seen([user('go')]) });
    expect(first.map((r) => r.text)).toEqual([reply, reply]);
    expect(first.every((r) => r.usage.inputTokens > 0)).toBe(true);

    const before = calls().length;
    values(await ask());
    expect(
      calls()
        .slice(before)
        .map((c) => [c.status, bodyOf(c).n]),
    ).toEqual([
      [200, undefined],
      [200, undefined],
    ]);
  });

  it('asks again for the choices a server that ignores n did not answer, and remembers it', async () => {
    // A proxy that drops `n`, as servers that ignore it do.
    const asked: unknown[] = [];
    const proxy: Server = createServer(async (req, res) => {
      let raw = '';
      for await (const chunk of req) raw += chunk;
      const { n, ...body } = JSON.parse(raw) as Record<string, unknown>;
      asked.push(n);
      const upstream = await fetch(`${emulator.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: req.headers.authorization ?? '' },
        body: JSON.stringify(body),
      });
      res.writeHead(upstream.status, {
        'content-type': upstream.headers.get('content-type') ?? 'text/plain',
      });
      res.end(Buffer.from(await upstream.arrayBuffer()));
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = proxy.address() as AddressInfo;
      const backend = createChatBackend(
        new OpenAI({ apiKey: emulator.apiKey, baseURL: `http://127.0.0.1:${port}/v1`, maxRetries: 0 }),
        big,
      );
      const ask = () =>
        backend.generateAlternatives({
          history: view([]),
          input: [user('go')],
          variants: [variant(options), variant(options), variant(options)],
        });
      const results = values(await ask());
      const reply = replyFor({ model: options.model, messages: seen([user('go')]) });
      expect(results.map((r) => r.text)).toEqual([reply, reply, reply]);
      // The n request answered one choice, then one request per missing choice; later, single requests only.
      expect(asked).toEqual([3, undefined, undefined]);
      values(await ask());
      expect(asked.slice(3)).toEqual([undefined, undefined, undefined]);
    } finally {
      await new Promise((resolve) => proxy.close(resolve));
    }
  });

  it('stops only the variant whose signal aborted', async () => {
    emulator.setLatency({ tokensPerSecond: 1000 });
    const backend = createChatBackend(client, big);
    const stop = new AbortController();
    let shown = '';
    const results = await backend.generateAlternatives({
      history: view([]),
      input: [user('!tokens 300')],
      variants: [
        {
          options,
          signal: stop.signal,
          onDelta(delta) {
            shown += delta;
            if (shown.length > 20) stop.abort();
          },
        },
        variant(options),
      ],
    });
    expect(calls()).toHaveLength(1);
    const [stopped, finished] = values(results);
    expect(stopped!.stopped).toBe(true);
    expect(stopped!.text).toBe(shown);
    expect(countTokens(stopped!.text)).toBeLessThan(300);
    expect(finished!.stopped).toBe(false);
    expect(countTokens(finished!.text)).toBe(300);
  });

  it('retries a rate limit, and reports a refused key as such', async () => {
    const backend = createChatBackend(client, big);
    emulator.failNext({ route: 'POST /v1/chat/completions', status: 429, retryAfterSeconds: 0 });
    expect((await turn(backend, [], 'hi')).text).toContain('hi');
    expect(calls().map((c) => c.status)).toEqual([429, 200]);
    const refused = createChatBackend(
      new OpenAI({ apiKey: 'sk-wrong-secret', baseURL: emulator.baseURL, maxRetries: 0 }),
      big,
    );
    const failure = (await turn(refused, [], 'hi').catch((error: unknown) => error)) as UpstreamError;
    expect(failure).toBeInstanceOf(UpstreamError);
    expect(failure.failure).toBe('auth');
    expect(failure.userMessage).not.toContain('sk-wrong-secret');
    const alternatives = await refused.generateAlternatives({
      history: view([]),
      input: [user('hi')],
      variants: [variant(options), variant(options)],
    });
    expect(alternatives.map((r) => r.status === 'rejected' && (r.reason as UpstreamError).failure)).toEqual([
      'auth',
      'auth',
    ]);
  });
});

/**
 * A stand-in for llama.cpp's llama-server, answering as the real one does (checked against the Debian build b11669 in
 * test/e2e/real-llama.test.ts): `n` above its slot count is a 400 with a numeric `code`; a stream with n > 1 has the
 * choices interleaved and one usage chunk per choice, right after that choice's end, counting that choice alone; a
 * prompt beyond a slot's context is a 400 of type `exceed_context_size_error`. Here a token is a word, and choice i
 * answers with i + 2 words.
 */
async function llamaLike({ slots, context }: { slots: number; context: number }) {
  const asked: { n: number | undefined; messages: { role: string; content: string }[] }[] = [];
  const server: Server = createServer(async (req, res) => {
    let raw = '';
    for await (const chunk of req) raw += chunk;
    const body = JSON.parse(raw) as { n?: number; messages: { role: string; content: string }[] };
    asked.push({ n: body.n, messages: body.messages });
    const n = body.n ?? 1;
    const fail = (error: Record<string, unknown>) => {
      res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error }));
    };
    if (n > slots) {
      return fail({
        code: 400,
        message: `Field 'n': Value must be between 1 <= value <= ${slots}, but got ${n}`,
        type: 'invalid_request_error',
      });
    }
    const prompt = body.messages.reduce((sum, m) => sum + m.content.split(/\s+/).length, 0);
    if (prompt > context) {
      return fail({
        code: 400,
        message: `request (${prompt} tokens) exceeds the available context size (${context} tokens), try increasing it`,
        type: 'exceed_context_size_error',
        n_prompt_tokens: prompt,
        n_ctx: context,
      });
    }
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const send = (chunk: Record<string, unknown>) =>
      res.write(`data: ${JSON.stringify({ object: 'chat.completion.chunk', model: 'tiny', ...chunk })}\n\n`);
    const words = Array.from({ length: n }, (_, i) => Array.from({ length: i + 2 }, (_, w) => `w${i}.${w} `));
    for (let i = 0; i < n; i++)
      send({ choices: [{ index: i, delta: { role: 'assistant', content: null } }] });
    for (let step = 0; step < n + 1; step++) {
      for (const [i, choice] of words.entries()) {
        if (step < choice.length) send({ choices: [{ index: i, delta: { content: choice[step] } }] });
        if (step === choice.length - 1) {
          send({ choices: [{ index: i, delta: {}, finish_reason: 'stop' }] });
          send({ choices: [], usage: { prompt_tokens: prompt, completion_tokens: choice.length } });
        }
      }
    }
    res.end('data: [DONE]\n\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const client = new OpenAI({ apiKey: 'none', baseURL: `http://127.0.0.1:${port}/v1`, maxRetries: 0 });
  return { client, asked, close: () => new Promise((resolve) => server.close(resolve)) };
}

describe('chat backend on a server that answers as llama-server does', () => {
  const alternatives = (backend: ModelBackend, count: number) =>
    backend.generateAlternatives({
      history: view([]),
      input: [user('go')],
      variants: Array.from({ length: count }, () => variant(options)),
    });

  it('gives each alternative the tokens the server counted for it, and the prompt once', async () => {
    const llama = await llamaLike({ slots: 4, context: 1000 });
    try {
      const results = values(await alternatives(createChatBackend(llama.client, big), 3));
      expect(llama.asked.map((a) => a.n)).toEqual([3]);
      expect(results.map((r) => r.text)).toEqual(['w0.0 w0.1 ', 'w1.0 w1.1 w1.2 ', 'w2.0 w2.1 w2.2 w2.3 ']);
      expect(results.map((r) => r.usage)).toEqual([
        { inputTokens: 1, outputTokens: 2 },
        { inputTokens: 0, outputTokens: 3 },
        { inputTokens: 0, outputTokens: 4 },
      ]);
    } finally {
      await llama.close();
    }
  });

  it('asks in requests of at most the n the server names in its refusal, and remembers it', async () => {
    const llama = await llamaLike({ slots: 2, context: 1000 });
    try {
      const backend = createChatBackend(llama.client, big);
      const first = values(await alternatives(backend, 5));
      // Refused once; then requests of 2, 2 and 1, at once.
      expect(llama.asked.map((a) => a.n)).toEqual([5, 2, 2, undefined]);
      expect(first.map((r) => r.text)).toEqual([
        'w0.0 w0.1 ',
        'w1.0 w1.1 w1.2 ',
        'w0.0 w0.1 ',
        'w1.0 w1.1 w1.2 ',
        'w0.0 w0.1 ',
      ]);
      expect(first.map((r) => r.usage.outputTokens)).toEqual([2, 3, 2, 3, 2]);
      // The limit is kept: the next fork asks within it straight away, and 2 is still one request.
      values(await alternatives(backend, 3));
      values(await alternatives(backend, 2));
      expect(llama.asked.slice(4).map((a) => a.n)).toEqual([2, undefined, 2]);
    } finally {
      await llama.close();
    }
  });

  it('says that a message too long for the server is too long, and a thread too long is too long', async () => {
    const llama = await llamaLike({ slots: 2, context: 50 });
    try {
      const backend = createChatBackend(llama.client, big);
      const failure = (history: Item[], text: string) =>
        turn(backend, history, text).then(
          () => undefined,
          (error: unknown) => error as UpstreamError,
        );
      const long = Array.from({ length: 60 }, (_, i) => `word${i}`).join(' ');
      // Alone, or with a little history: the message itself does not fit.
      for (const history of [[], historyOf(2)]) {
        const alone = await failure(history, long);
        expect(alone).toBeInstanceOf(UpstreamError);
        expect(alone!.failure).toBe('context_too_long');
        expect(alone!.userMessage).toMatch(
          /^This message is longer than the model can read \(\d+ tokens were sent; it reads at most 50\)\. Send a shorter one\.$/,
        );
      }
      // A short message after a long history: the thread is what is too long.
      const history = [user(long.slice(0, 200)), assistant('ok'), user(long.slice(200)), assistant('ok')];
      const thread = await failure(history, 'and now?');
      expect(thread!.failure).toBe('context_too_long');
      expect(thread!.userMessage).toMatch(/^This thread is now longer than the model can read/);
      // Alternatives say it the same way.
      const [alternative] = await backend.generateAlternatives({
        history: view([]),
        input: [user(long)],
        variants: [variant(options), variant(options)],
      });
      expect(alternative?.status === 'rejected' && (alternative.reason as UpstreamError).userMessage).toMatch(
        /^This message is longer than the model can read/,
      );
    } finally {
      await llama.close();
    }
  });
});
