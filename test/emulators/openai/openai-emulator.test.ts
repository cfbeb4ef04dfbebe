import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  CONVERSATION_LOCKED_MESSAGE,
  countTokens,
  createOpenAIEmulator,
  type OpenAIEmulator,
  REFUSAL_TEXT,
  type ReplyMessage,
  replyFor,
  THINK_PREFIX,
} from './index.ts';
import { openAISpecValidator } from './spec-validator.ts';

const MODEL = 'gpt-4.1-mini';
const spec = openAISpecValidator();

let emu: OpenAIEmulator;
let client: OpenAI;

function newClient(opts: { maxRetries?: number; apiKey?: string } = {}): OpenAI {
  return new OpenAI({
    baseURL: emu.baseURL,
    apiKey: opts.apiKey ?? emu.apiKey,
    maxRetries: opts.maxRetries ?? 0,
  });
}

/** A raw HTTP call, to look at bodies exactly as sent. */
async function raw(method: string, path: string, body?: unknown, key = emu.apiKey) {
  const res = await fetch(`${emu.baseURL}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, headers: res.headers, json: (await res.json()) as Record<string, unknown> };
}

const user = (text: string): ReplyMessage => ({ role: 'user', text });
const assistant = (text: string): ReplyMessage => ({ role: 'assistant', text });

beforeAll(async () => {
  emu = await createOpenAIEmulator();
});
afterAll(async () => {
  await emu.close();
});
beforeEach(() => {
  emu.reset();
  client = newClient();
});

describe('replyFor', () => {
  it('depends on the whole history and the knobs', () => {
    const base = { model: MODEL, messages: [user('hello there')] };
    const a = replyFor(base);
    expect(a).toMatch(/^\[gpt-4\.1-mini\] reply 1 to "hello there" · saw 1 msgs · digest [0-9a-f]{8}$/);
    expect(replyFor({ ...base, messages: [user('x'), assistant('y'), user('hello there')] })).toMatch(
      /reply 2 to "hello there" · saw 3 msgs/,
    );
    expect(
      replyFor({ ...base, instructions: 'Answer like a pirate, always, in every single reply' }),
    ).toContain(' · style "Answer like a pirate, always, in every s"');
    expect(replyFor({ ...base, temperature: 0.7 })).toContain(' · t=0.7');
    expect(replyFor({ ...base, choiceIndex: 2 })).toContain(' · choice 2');
    expect(replyFor({ ...base, choiceIndex: 0 })).toBe(a);
  });

  it('obeys the magic words', () => {
    const r = (text: string) => replyFor({ model: MODEL, messages: [user(text)] });
    expect(r('!think please')).toMatch(new RegExp(`^${THINK_PREFIX.replace(/[/]/g, '\\/')}\\[gpt`));
    expect(r('!mention')).toContain('@everyone');
    expect(r('!mention')).toContain('<@123456789012345678>');
    expect(r('!refuse')).toBe(REFUSAL_TEXT);
    expect(countTokens(r('!tokens 57'))).toBe(57);
    const long = r('!long 6000');
    expect(long.length).toBeGreaterThan(5400);
    expect(long.length).toBeLessThan(6800);
    expect(long.split('\n\n').length).toBeGreaterThan(4);
    const code = /```ts\n([\s\S]*?)\n```/.exec(long)?.[1] ?? '';
    expect(code.split('\n').length).toBeGreaterThan(20);
  });
});

describe('models and auth', () => {
  it('lists and retrieves models', async () => {
    const ids: string[] = [];
    for await (const m of client.models.list()) ids.push(m.id);
    expect(ids).toEqual([
      'gpt-4.1-mini',
      'gpt-4.1',
      'gpt-5-mini',
      'gpt-4o-mini',
      'gpt-3.5-turbo',
      'tf-test-8k',
    ]);
    spec.assertValid('ListModelsResponse', (await raw('GET', '/models')).json);
    spec.assertValid('Model', await client.models.retrieve('gpt-4.1'));
    await expect(client.models.retrieve('nope')).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });

  it('rejects another API key with invalid_api_key', async () => {
    const bad = newClient({ apiKey: 'sk-wrong-key-123456' });
    const err = await bad.models.list().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((err as InstanceType<typeof OpenAI.AuthenticationError>).code).toBe('invalid_api_key');
    const r = await raw('GET', '/models', undefined, 'sk-nope-nope-nope');
    expect(r.status).toBe(401);
    spec.assertValid('ErrorResponse', r.json);
  });
});

describe('conversations', () => {
  it('creates with items and metadata, refuses more than 20 items', async () => {
    const conv = await client.conversations.create({
      metadata: { thread: '42' },
      items: [
        { type: 'message', role: 'user', content: 'Hello!' },
        { type: 'message', role: 'assistant', content: 'Hi, how can I help?' },
        { role: 'developer', content: [{ type: 'input_text', text: 'Be brief.' }] },
      ],
    });
    spec.assertValid('ConversationResource', conv);
    expect(conv.id).toMatch(/^conv_/);
    expect(conv.metadata).toEqual({ thread: '42' });
    const snap = emu.conversation(conv.id);
    expect(snap?.items).toHaveLength(3);
    expect(snap?.items[0]).toMatchObject({
      type: 'message',
      role: 'user',
      status: 'completed',
      content: [{ type: 'input_text', text: 'Hello!' }],
    });
    expect(snap?.items[1]).toMatchObject({ role: 'assistant', content: [{ type: 'output_text' }] });
    expect((await client.conversations.retrieve(conv.id)).id).toBe(conv.id);

    const tooMany = Array.from({ length: 21 }, (_, i) => ({ role: 'user' as const, content: `m${i}` }));
    const err = await client.conversations.create({ items: tooMany }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).code).toBe('array_above_max_length');
    expect(emu.conversationIds()).toEqual([conv.id]);
    const r = await raw('POST', '/conversations', { items: tooMany });
    expect(r.status).toBe(400);
    spec.assertValid('ErrorResponse', r.json);
  });

  it('paginates items with after, limit, order and the SDK auto-pagination', async () => {
    const texts = Array.from({ length: 25 }, (_, i) => `item ${i}`);
    const conv = await client.conversations.create({
      items: texts.slice(0, 20).map((t) => ({ role: 'user' as const, content: t })),
    });
    const added = await client.conversations.items.create(conv.id, {
      items: texts.slice(20).map((t) => ({ role: 'user' as const, content: t })),
    });
    spec.assertValid('ConversationItemList', added);
    expect(added.data).toHaveLength(5);
    const ids = emu.conversation(conv.id)?.items.map((i) => (i as { id: string }).id) ?? [];
    expect(ids).toHaveLength(25);

    const firstPage = await client.conversations.items.list(conv.id);
    spec.assertValid('ConversationItemList', (await raw('GET', `/conversations/${conv.id}/items`)).json);
    expect(firstPage.data.map((i) => i.id)).toEqual([...ids].reverse().slice(0, 20)); // default: desc, 20
    expect(firstPage.has_more).toBe(true);

    const asc = await raw('GET', `/conversations/${conv.id}/items?order=asc&limit=10&after=${ids[4]}`);
    expect((asc.json.data as { id: string }[]).map((i) => i.id)).toEqual(ids.slice(5, 15));
    expect(asc.json).toMatchObject({ first_id: ids[5], last_id: ids[14], has_more: true });
    const tail = await raw('GET', `/conversations/${conv.id}/items?order=asc&limit=10&after=${ids[19]}`);
    expect(tail.json).toMatchObject({ first_id: ids[20], last_id: ids[24], has_more: false });

    emu.requests.length = 0;
    const seen: string[] = [];
    for await (const item of client.conversations.items.list(conv.id, { order: 'asc', limit: 7 })) {
      if (item.type === 'message' && item.content[0]?.type === 'input_text') seen.push(item.content[0].text);
    }
    expect(seen).toEqual(texts);
    expect(emu.requests.map((r) => r.route)).toEqual(Array(4).fill('GET /v1/conversations/:id/items'));
    expect(emu.requests.map((r) => r.query.after)).toEqual([undefined, ids[6], ids[13], ids[20]]);

    const limitErr = await client.conversations.items.list(conv.id, { limit: 101 }).catch((e: unknown) => e);
    expect(limitErr).toBeInstanceOf(OpenAI.BadRequestError);
  });

  it('retrieves, deletes items, updates and deletes conversations, 404s the unknown', async () => {
    const conv = await client.conversations.create({ items: [{ role: 'user', content: 'a' }] });
    const [first] = (emu.conversation(conv.id)?.items ?? []) as { id: string }[];
    const id = first?.id ?? '';
    const item = await client.conversations.items.retrieve(id, { conversation_id: conv.id });
    spec.assertValid('ConversationItem', item);
    const after = await client.conversations.items.delete(id, { conversation_id: conv.id });
    spec.assertValid('ConversationResource', after);
    expect(emu.conversation(conv.id)?.items).toEqual([]);
    await expect(
      client.conversations.items.retrieve(id, { conversation_id: conv.id }),
    ).rejects.toBeInstanceOf(OpenAI.NotFoundError);

    const updated = await client.conversations.update(conv.id, { metadata: { topic: 'b' } });
    expect(updated.metadata).toEqual({ topic: 'b' });
    const deleted = await client.conversations.delete(conv.id);
    spec.assertValid('DeletedConversationResource', deleted);
    expect(deleted).toEqual({ id: conv.id, object: 'conversation.deleted', deleted: true });
    expect(emu.conversationIds()).toEqual([]);
    const err = await client.conversations.retrieve(conv.id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    const r = await raw('GET', `/conversations/${conv.id}`);
    expect(r.status).toBe(404);
    spec.assertValid('ErrorResponse', r.json);
  });
});

describe('responses', () => {
  it('streams a turn on a conversation with the real event sequence, and appends the items', async () => {
    const conv = await client.conversations.create({
      items: [
        { role: 'user', content: 'earlier question' },
        { role: 'assistant', content: 'earlier answer' },
      ],
    });
    const stream = await client.responses.create({
      model: MODEL,
      conversation: conv.id,
      input: 'what next?',
      instructions: 'Be a pirate',
      stream: true,
    });
    const events: { type: string; sequence_number: number }[] = [];
    let text = '';
    for await (const ev of stream) {
      spec.assertValidStreamEvent(ev);
      events.push(ev);
      if (ev.type === 'response.output_text.delta') text += ev.delta;
    }
    const expected = replyFor({
      model: MODEL,
      instructions: 'Be a pirate',
      messages: [user('earlier question'), assistant('earlier answer'), user('what next?')],
    });
    expect(text).toBe(expected);
    const types = events.map((e) => e.type);
    const deltas = types.filter((t) => t === 'response.output_text.delta').length;
    expect(deltas).toBe(countTokens(expected));
    expect(types).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      ...Array(deltas).fill('response.output_text.delta'),
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
    const completed = events.at(-1) as unknown as { response: OpenAI.Responses.Response };
    spec.assertValid('Response', completed.response);
    expect(completed.response.usage).toMatchObject({
      input_tokens: countTokens('Be a pirate earlier question earlier answer what next?'),
      output_tokens: countTokens(expected),
    });
    expect(completed.response.conversation).toEqual({ id: conv.id });

    const items = emu.conversation(conv.id)?.items as {
      role: string;
      id: string;
      content: { text: string }[];
    }[];
    expect(items.map((i) => [i.role, i.content[0]?.text])).toEqual([
      ['user', 'earlier question'],
      ['assistant', 'earlier answer'],
      ['user', 'what next?'],
      ['assistant', expected],
    ]);
    expect(items[3]?.id).toBe(completed.response.output[0]?.id);
    const listed = await client.conversations.items.list(conv.id, { order: 'asc' });
    expect(listed.data).toEqual(items);
    spec.assertValid('Response', await client.responses.retrieve(completed.response.id));
    expect(emu.requests.find((r) => r.route === 'POST /v1/responses')?.conversationId).toBe(conv.id);
  });

  it('works with client.responses.stream() and its final response', async () => {
    const conv = await client.conversations.create();
    const stream = client.responses.stream({
      model: MODEL,
      conversation: { id: conv.id },
      input: 'hi there',
    });
    let deltas = '';
    stream.on('response.output_text.delta', (e) => {
      deltas += e.delta;
    });
    const final = await stream.finalResponse();
    const expected = replyFor({ model: MODEL, messages: [user('hi there')] });
    expect(final.output_text).toBe(expected);
    expect(deltas).toBe(expected);
    expect(final.status).toBe('completed');
  });

  it('answers plain input without streaming, stores, retrieves and deletes responses', async () => {
    const r = await client.responses.create({
      model: 'gpt-5-mini',
      input: [
        { role: 'system', content: 'sys' },
        {
          role: 'user',
          content: [
            { type: 'input_text', text: 'part one ' },
            { type: 'input_text', text: 'two' },
          ],
        },
      ],
      temperature: 0.3,
      metadata: { k: 'v' },
    });
    spec.assertValid('Response', r);
    expect(r.id).toMatch(/^resp_/);
    expect(r.output_text).toBe(
      replyFor({
        model: 'gpt-5-mini',
        temperature: 0.3,
        messages: [{ role: 'system', text: 'sys' }, user('part one two')],
      }),
    );
    expect(r.metadata).toEqual({ k: 'v' });
    expect(r.usage?.total_tokens).toBe((r.usage?.input_tokens ?? 0) + (r.usage?.output_tokens ?? 0));
    expect((await client.responses.retrieve(r.id)).output_text).toBe(r.output_text);
    const inputItems = await client.responses.inputItems.list(r.id, { order: 'asc' });
    expect(inputItems.data).toHaveLength(2);
    await client.responses.delete(r.id);
    await expect(client.responses.retrieve(r.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    expect(emu.response(r.id)).toBeUndefined();
  });

  it('truncates at max_output_tokens as an incomplete response', async () => {
    const r = await client.responses.create({ model: MODEL, input: '!tokens 40', max_output_tokens: 16 });
    spec.assertValid('Response', r);
    expect(r.status).toBe('incomplete');
    expect(r.incomplete_details).toEqual({ reason: 'max_output_tokens' });
    expect(r.usage?.output_tokens).toBe(16);
  });

  it('locks a conversation while a response runs: conversation_locked, then free again', async () => {
    const conv = await client.conversations.create();
    emu.setLatency({ firstTokenMs: 150, tokensPerSecond: 2000 });
    const first = await client.responses.create({
      model: MODEL,
      conversation: conv.id,
      input: 'one',
      stream: true,
    });
    const err = await client.responses
      .create({ model: MODEL, conversation: conv.id, input: 'two' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    const e = err as InstanceType<typeof OpenAI.BadRequestError>;
    expect(e.code).toBe('conversation_locked');
    expect(e.param).toBe('conversation');
    expect(e.error).toEqual({
      message: CONVERSATION_LOCKED_MESSAGE,
      type: 'invalid_request_error',
      param: 'conversation',
      code: 'conversation_locked',
    });
    // The exact body, seen raw.
    const emu2Body = await raw('POST', '/responses', { model: MODEL, conversation: conv.id, input: 'three' });
    expect(emu2Body.json).toEqual({
      error: {
        message:
          'Another process is currently operating on this conversation. Please retry in a few seconds.',
        type: 'invalid_request_error',
        param: 'conversation',
        code: 'conversation_locked',
      },
    });
    // Another conversation is not locked, and neither is a chain.
    const other = await client.conversations.create();
    emu.setLatency({});
    await client.responses.create({ model: MODEL, conversation: other.id, input: 'elsewhere' });
    for await (const _ of first) {
      // drain
    }
    const next = await client.responses.create({ model: MODEL, conversation: conv.id, input: 'two' });
    expect(next.output_text).toBe(
      replyFor({
        model: MODEL,
        messages: [user('one'), assistant(replyFor({ model: MODEL, messages: [user('one')] })), user('two')],
      }),
    );
    // Requests on the conversation never overlapped except the rejected ones.
    const ok = emu.requests.filter((r) => r.conversationId === conv.id && r.route === 'POST /v1/responses');
    expect(ok.map((r) => r.status)).toEqual([200, 400, 400, 200]);
    expect(ok[0]?.endedAt).toBeLessThanOrEqual(ok[3]?.startedAt ?? 0);
  });

  it('cancels on client disconnect: no output appended, lock released', async () => {
    const conv = await client.conversations.create();
    emu.setLatency({ tokensPerSecond: 200 });
    const stream = await client.responses.create({
      model: MODEL,
      conversation: conv.id,
      input: '!tokens 200',
      stream: true,
    });
    let responseId = '';
    let deltas = 0;
    for await (const ev of stream) {
      if (ev.type === 'response.created') responseId = ev.response.id;
      if (ev.type === 'response.output_text.delta' && ++deltas === 3) break;
    }
    await vi.waitFor(() => expect((emu.response(responseId) as { status: string }).status).toBe('cancelled'));
    expect(emu.conversation(conv.id)?.items).toHaveLength(1); // the input only
    const rec = emu.requests.find((r) => r.route === 'POST /v1/responses');
    expect(rec?.endedAt).toBeDefined();
    emu.setLatency({});
    const next = await client.responses.create({ model: MODEL, conversation: conv.id, input: 'again' });
    expect(next.status).toBe('completed');
    expect(emu.conversation(conv.id)?.items).toHaveLength(3);
  });

  it('chains by previous_response_id, forks freely, refuses conversation together with it', async () => {
    const r1 = await client.responses.create({ model: MODEL, input: 'first' });
    const r2 = await client.responses.create({ model: MODEL, previous_response_id: r1.id, input: 'second' });
    expect(r2.output_text).toBe(
      replyFor({ model: MODEL, messages: [user('first'), assistant(r1.output_text), user('second')] }),
    );
    const r3 = await client.responses.create({ model: MODEL, previous_response_id: r2.id, input: 'third' });
    expect(r3.output_text).toContain('reply 3 to "third" · saw 5 msgs');
    const fork = await client.responses.create({ model: MODEL, previous_response_id: r1.id, input: 'other' });
    expect(fork.output_text).toContain('reply 2 to "other" · saw 3 msgs');
    expect(fork.previous_response_id).toBe(r1.id);

    const conv = await client.conversations.create();
    const err = await client.responses
      .create({ model: MODEL, conversation: conv.id, previous_response_id: r1.id, input: 'x' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).code).toBe('mutually_exclusive_parameters');
    const missing = await client.responses
      .create({ model: MODEL, previous_response_id: 'resp_nope', input: 'x' })
      .catch((e: unknown) => e);
    expect((missing as InstanceType<typeof OpenAI.BadRequestError>).code).toBe('previous_response_not_found');
  });

  it('streams refusals with refusal events', async () => {
    const events: string[] = [];
    let refusal = '';
    const stream = await client.responses.create({ model: MODEL, input: '!refuse now', stream: true });
    for await (const ev of stream) {
      spec.assertValidStreamEvent(ev);
      events.push(ev.type);
      if (ev.type === 'response.refusal.delta') refusal += ev.delta;
      if (ev.type === 'response.completed') {
        expect(ev.response.output[0]).toMatchObject({
          content: [{ type: 'refusal', refusal: REFUSAL_TEXT }],
        });
      }
    }
    expect(refusal).toBe(REFUSAL_TEXT);
    expect(events).toContain('response.refusal.done');
    expect(events).not.toContain('response.output_text.delta');
  });

  it('rejects unknown models and inputs above the context window', async () => {
    const err = await client.responses.create({ model: 'gpt-nope', input: 'x' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect((err as InstanceType<typeof OpenAI.NotFoundError>).code).toBe('model_not_found');
    const small = await createOpenAIEmulator({ contextWindowTokens: 5 });
    try {
      const c = new OpenAI({ baseURL: small.baseURL, apiKey: small.apiKey, maxRetries: 0 });
      const e2 = await c.responses
        .create({ model: MODEL, input: 'one two three four five six' })
        .catch((e) => e);
      expect(e2).toBeInstanceOf(OpenAI.BadRequestError);
      expect((e2 as InstanceType<typeof OpenAI.BadRequestError>).code).toBe('context_length_exceeded');
      await c.responses.create({ model: MODEL, input: 'one two' });
    } finally {
      await small.close();
    }
  });

  it('waits firstTokenMs before the first token', async () => {
    emu.setLatency({ firstTokenMs: 80 });
    const t0 = performance.now();
    const stream = await client.responses.create({ model: MODEL, input: 'slow', stream: true });
    let firstDeltaAt = 0;
    for await (const ev of stream) {
      if (ev.type === 'response.output_text.delta' && !firstDeltaAt) firstDeltaAt = performance.now();
    }
    expect(firstDeltaAt - t0).toBeGreaterThanOrEqual(75);
  });
});

describe('chat completions', () => {
  const messages = [
    { role: 'system' as const, content: 'You are terse.' },
    { role: 'user' as const, content: 'Pick a colour' },
  ];
  const seen: ReplyMessage[] = [{ role: 'system', text: 'You are terse.' }, user('Pick a colour')];

  it('answers n choices that differ by index, counting the prompt once', async () => {
    const c = await client.chat.completions.create({ model: MODEL, messages, n: 3, temperature: 0.5 });
    spec.assertValid('CreateChatCompletionResponse', c);
    expect(c.id).toMatch(/^chatcmpl-/);
    const texts = c.choices.map((ch) => ch.message.content);
    expect(texts).toEqual(
      [0, 1, 2].map((i) => replyFor({ model: MODEL, messages: seen, temperature: 0.5, choiceIndex: i })),
    );
    expect(new Set(texts).size).toBe(3);
    const prompt = countTokens('You are terse.') + countTokens('Pick a colour');
    expect(c.usage?.prompt_tokens).toBe(prompt);
    expect(c.usage?.completion_tokens).toBe(texts.reduce((n, t) => n + countTokens(t ?? ''), 0));
  });

  it('streams chunks per choice, then a usage chunk and [DONE]', async () => {
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages,
      n: 2,
      stream: true,
      stream_options: { include_usage: true },
    });
    const texts = ['', ''];
    const finish: (string | null)[] = [null, null];
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const chunk of stream) {
      spec.assertValid('CreateChatCompletionStreamResponse', chunk);
      for (const ch of chunk.choices) {
        texts[ch.index] += ch.delta.content ?? '';
        if (ch.finish_reason) finish[ch.index] = ch.finish_reason;
      }
      if (chunk.usage) usage = chunk.usage;
    }
    expect(texts).toEqual([0, 1].map((i) => replyFor({ model: MODEL, messages: seen, choiceIndex: i })));
    expect(finish).toEqual(['stop', 'stop']);
    expect(usage?.prompt_tokens).toBe(countTokens('You are terse.') + countTokens('Pick a colour'));
  });

  it('rejects n > 1 in llama.cpp mode', async () => {
    emu.setChatRejectsMultipleChoices(true);
    const err = await client.chat.completions
      .create({ model: MODEL, messages, n: 2 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).error).toMatchObject({
      message: 'Only one completion choice is allowed',
      type: 'invalid_request_error',
    });
    const one = await client.chat.completions.create({ model: MODEL, messages, n: 1 });
    expect(one.choices).toHaveLength(1);
  });
});

describe('failure injection and the request log', () => {
  it('429 with retry-after: the SDK retries once and succeeds; both requests are logged', async () => {
    emu.failNext({ route: 'POST /v1/responses', status: 429, retryAfterSeconds: 0 });
    const retrying = newClient({ maxRetries: 1 });
    const r = await retrying.responses.create({ model: MODEL, input: 'retry me' });
    expect(r.status).toBe('completed');
    const logged = emu.requests.filter((q) => q.route === 'POST /v1/responses');
    expect(logged.map((q) => q.status)).toEqual([429, 200]);
    expect(logged[0]?.body).toEqual(logged[1]?.body);
    expect(logged[0]?.bytes).toBeGreaterThan(0);

    emu.failNext({
      status: 429,
      retryAfterSeconds: 7,
      code: 'insufficient_quota',
      type: 'insufficient_quota',
    });
    const res = await raw('GET', '/models');
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('7');
    expect(res.json).toMatchObject({ error: { code: 'insufficient_quota', type: 'insufficient_quota' } });
    spec.assertValid('ErrorResponse', res.json);
  });

  it('500 and 401, counted down by times, only on the given route', async () => {
    emu.failNext({ route: 'POST /v1/conversations/:id/items', status: 500, times: 2 });
    const conv = await client.conversations.create();
    const add = () => client.conversations.items.create(conv.id, { items: [{ role: 'user', content: 'x' }] });
    await expect(add()).rejects.toBeInstanceOf(OpenAI.InternalServerError);
    await expect(add()).rejects.toBeInstanceOf(OpenAI.InternalServerError);
    await add();
    expect(emu.conversation(conv.id)?.items).toHaveLength(1);

    emu.failNext({ status: 401 });
    const err = await client.models.list().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((err as InstanceType<typeof OpenAI.AuthenticationError>).code).toBe('invalid_api_key');

    const log = emu.requests;
    expect(log.map((r) => r.id)).toEqual(log.map((_, i) => i + 1));
    expect(log.map((r) => r.status)).toEqual([200, 500, 500, 200, 401]);
    expect(log.filter((r) => r.conversationId === conv.id)).toHaveLength(4);
    for (const r of log) expect(r.endedAt).toBeGreaterThanOrEqual(r.startedAt);
  });
});
