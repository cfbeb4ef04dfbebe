/**
 * The context window: per-model windows and OpenAI's overflow error, truncation, server-side and standalone
 * compaction, and what a test can learn of what the model read (`seen`, `compaction`, `!context`).
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  COMPACTION_ITEM_TOKENS,
  CONTEXT_EXCEEDED_MESSAGE,
  countTokens,
  createOpenAIEmulator,
  type OpenAIEmulator,
  rollDigest,
} from './index.ts';
import { openAISpecValidator } from './spec-validator.ts';

const SMALL = 'tf-test-8k';
const spec = openAISpecValidator();
let emu: OpenAIEmulator;
let client: OpenAI;

/** `n` tokens of text starting with `tag`. */
const words = (n: number, tag: string) => [tag, ...Array.from({ length: n - 1 }, () => 'w')].join(' ');
const user = (text: string) => ({ role: 'user' as const, content: text });

async function raw(path: string, body: unknown) {
  const res = await fetch(`${emu.baseURL}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${emu.apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

const OVERFLOW_BODY = {
  error: {
    message: CONTEXT_EXCEEDED_MESSAGE,
    type: 'invalid_request_error',
    param: 'input',
    code: 'context_length_exceeded',
  },
};

beforeAll(async () => {
  emu = await createOpenAIEmulator();
});
afterAll(async () => {
  await emu.close();
});
beforeEach(() => {
  emu.reset();
  client = new OpenAI({ baseURL: emu.baseURL, apiKey: emu.apiKey, maxRetries: 0 });
});

describe('context windows', () => {
  it('lists tf-test-8k with a window of 8,192 tokens; other models have large windows', async () => {
    expect((await client.models.retrieve(SMALL)).id).toBe(SMALL);
    expect(emu.contextWindow(SMALL)).toBe(8192);
    expect(emu.contextWindow('gpt-4.1-mini')).toBeGreaterThan(1_000_000);
    expect(emu.contextWindow('gpt-4o-mini')).toBe(128_000);
  });

  it('answers OpenAI 400 context_length_exceeded above the window: input array, chain, conversation', async () => {
    const fits = await client.responses.create({ model: SMALL, input: [user(words(8192, 'full'))] });
    expect(fits.usage?.input_tokens).toBe(8192);
    expect(emu.seen(fits.id)?.inputTokens).toBe(8192);

    const over = await raw('/responses', { model: SMALL, input: [user(words(8193, 'over'))] });
    expect(over).toEqual({ status: 400, json: OVERFLOW_BODY });
    spec.assertValid('ErrorResponse', over.json);
    // Instructions count too.
    const withInstructions = await raw('/responses', {
      model: SMALL,
      instructions: 'be brief',
      input: [user(words(8191, 'x'))],
    });
    expect(withInstructions.status).toBe(400);

    const first = await client.responses.create({ model: SMALL, input: words(5000, 'a') });
    const chained = await raw('/responses', {
      model: SMALL,
      previous_response_id: first.id,
      input: words(4000, 'b'),
    });
    expect(chained).toEqual({ status: 400, json: OVERFLOW_BODY });

    const conv = await client.conversations.create({
      items: [{ type: 'message', role: 'user', content: words(5000, 'c') }],
    });
    const onConv = await raw('/responses', { model: SMALL, conversation: conv.id, input: words(4000, 'd') });
    expect(onConv).toEqual({ status: 400, json: OVERFLOW_BODY });
    // Nothing of the refused turn was added.
    expect(emu.conversation(conv.id)?.items).toHaveLength(1);

    const err = await client.responses
      .create({ model: SMALL, input: words(9000, 'e') })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).code).toBe('context_length_exceeded');
  });

  it('answers the Chat Completions overflow error with the model window in it', async () => {
    const r = await raw('/chat/completions', { model: SMALL, messages: [user(words(8200, 'x'))] });
    expect(r).toEqual({
      status: 400,
      json: {
        error: {
          message:
            "This model's maximum context length is 8192 tokens. However, your messages resulted in 8200 tokens. Please reduce the length of the messages.",
          type: 'invalid_request_error',
          param: 'messages',
          code: 'context_length_exceeded',
        },
      },
    });
    const ok = await client.chat.completions.create({ model: SMALL, messages: [user(words(100, 'y'))] });
    expect(ok.usage?.prompt_tokens).toBe(100);
    const rec = emu.requests.at(-1);
    expect(rec?.seen).toMatchObject({ model: SMALL, inputTokens: 100, messages: [{ role: 'user' }] });
  });
});

describe("truncation: 'auto'", () => {
  it('drops the oldest items until the input fits, never the last one', async () => {
    const input = [user(words(3000, 'one')), user(words(3000, 'two')), user(words(3000, 'three'))];
    const r = await client.responses.create({ model: SMALL, input, truncation: 'auto' });
    spec.assertValid('Response', r);
    expect(r.truncation).toBe('auto');
    expect(r.usage?.input_tokens).toBe(6000);
    const seen = emu.seen(r.id);
    expect(seen?.truncatedItems).toBe(1);
    expect(seen?.messages.map((m) => m.text.split(' ')[0])).toEqual(['two', 'three']);

    const alone = await raw('/responses', {
      model: SMALL,
      input: [user(words(9000, 'big'))],
      truncation: 'auto',
    });
    expect(alone).toEqual({ status: 400, json: OVERFLOW_BODY });
    const bad = await raw('/responses', { model: SMALL, input: 'x', truncation: 'sometimes' });
    expect(bad.status).toBe(400);
    expect(bad.json.error).toMatchObject({ param: 'truncation', code: 'invalid_value' });
  });

  it('truncates a previous_response_id chain that outgrew the window', async () => {
    let prev = await client.responses.create({ model: SMALL, input: words(3000, 't1') });
    for (const tag of ['t2', 't3']) {
      prev = await client.responses.create({
        model: SMALL,
        previous_response_id: prev.id,
        input: words(3000, tag),
        truncation: 'auto',
      });
    }
    const seen = emu.seen(prev.id);
    expect(seen?.truncatedItems).toBeGreaterThan(0);
    expect(seen?.messages.at(-1)?.text.startsWith('t3')).toBe(true);
    expect(seen?.inputTokens).toBeLessThanOrEqual(8192);
  });
});

describe('server-side compaction (context_management)', () => {
  const cm = [{ type: 'compaction' as const, compact_threshold: 1000 }];

  it('emits a compaction item before the message once the input passes the threshold', async () => {
    const small = await client.responses.create({
      model: SMALL,
      input: words(900, 'a'),
      context_management: cm,
    });
    expect(small.output.map((o) => o.type)).toEqual(['message']);

    const input = [
      user(words(600, 'first')),
      { role: 'assistant' as const, content: 'ok' },
      user(words(600, 'second')),
    ];
    const r = await client.responses.create({ model: SMALL, input, context_management: cm });
    spec.assertValid('Response', r);
    expect(r.output.map((o) => o.type)).toEqual(['compaction', 'message']);
    const item = r.output[0] as { id: string; encrypted_content: string };
    expect(item.id).toMatch(/^cmp_/);
    expect(item.encrypted_content).toMatch(/^gAAAAA[A-Za-z0-9+/=]{40,}$/);
    expect(item.encrypted_content).not.toContain('first');
    expect(r.usage?.input_tokens).toBe(1201);
    const info = emu.compaction(item.encrypted_content);
    expect(info).toMatchObject({
      messageCount: 3,
      first: { role: 'user', text: words(600, 'first') },
      last: { role: 'user', text: words(600, 'second') },
      compactedTokens: 1201,
    });
    expect(info?.digest).toBe(
      rollDigest('', [
        { role: 'user', text: words(600, 'first') },
        { role: 'assistant', text: 'ok' },
        { role: 'user', text: words(600, 'second') },
      ]),
    );
    expect(emu.seen(r.id)?.compacted).toEqual(info);

    // Stateless chaining: the compaction item stands for all before it, whatever precedes it is ignored.
    const next = await client.responses.create({
      model: SMALL,
      input: [...input, ...r.output, user('third turn')] as OpenAI.Responses.ResponseInput,
    });
    const reply = r.output_text;
    expect(next.usage?.input_tokens).toBe(COMPACTION_ITEM_TOKENS + countTokens(reply) + 2);
    const seen = emu.seen(next.id);
    expect(seen?.compaction).toEqual(info);
    expect(seen?.messages.map((m) => m.text)).toEqual([reply, 'third turn']);
  });

  it('streams the compaction item as its own output item, and the message at output_index 1', async () => {
    const stream = await client.responses.create({
      model: SMALL,
      input: words(1500, 'long'),
      context_management: cm,
      stream: true,
    });
    const events: { type: string; output_index?: number; item?: { type: string } }[] = [];
    for await (const ev of stream) {
      spec.assertValidStreamEvent(ev);
      events.push(ev as (typeof events)[number]);
    }
    const added = events.filter((e) => e.type === 'response.output_item.added');
    expect(added.map((e) => [e.output_index, e.item?.type])).toEqual([
      [0, 'compaction'],
      [1, 'message'],
    ]);
    const done = events.filter((e) => e.type === 'response.output_item.done');
    expect(done.map((e) => e.item?.type)).toEqual(['compaction', 'message']);
    const completed = events.at(-1) as unknown as { type: string; response: OpenAI.Responses.Response };
    expect(completed.type).toBe('response.completed');
    spec.assertValid('Response', completed.response);
    expect(completed.response.output.map((o) => o.type)).toEqual(['compaction', 'message']);
  });

  it('on a conversation, stores the item before the reply; later turns read only from it', async () => {
    const conv = await client.conversations.create({});
    const texts: string[] = [];
    let compactedAt = -1;
    for (let turn = 1; turn <= 6; turn++) {
      const text = words(300, `turn${turn}`);
      texts.push(text);
      const r = await client.responses.create({
        model: SMALL,
        conversation: conv.id,
        input: text,
        context_management: cm,
      });
      texts.push(r.output_text);
      if (r.output[0]?.type === 'compaction' && compactedAt < 0) compactedAt = turn;
    }
    expect(compactedAt).toBe(4); // 3 x 300 user tokens + replies pass 1000 at the 4th turn
    const items = emu.conversation(conv.id)?.items as { type: string }[];
    const types = items.map((i) => i.type);
    expect(types.filter((t) => t === 'compaction')).toHaveLength(1);
    expect(types.slice(6, 9)).toEqual(['message', 'compaction', 'message']);
    const listed = await fetch(`${emu.baseURL}/conversations/${conv.id}/items?order=asc&limit=100`, {
      headers: { authorization: `Bearer ${emu.apiKey}` },
    });
    spec.assertValid('ConversationItemList', await listed.json());

    const last = emu.requests.filter((r) => r.route === 'POST /v1/responses').at(-1)?.seen;
    // Turn 6 read: the compaction (turns 1-4 and replies 1-3), reply 4, turn 5, reply 5, turn 6.
    expect(last?.compaction?.messageCount).toBe(7);
    expect(last?.compaction?.digest).toBe(
      rollDigest(
        '',
        texts.slice(0, 7).map((t, i) => ({ role: i % 2 ? 'assistant' : 'user', text: t })),
      ),
    );
    expect(last?.messages.map((m) => m.text)).toEqual(texts.slice(7, 11));
  });

  it('follows a previous_response_id chain only back to its latest compaction item', async () => {
    let prev = await client.responses.create({
      model: SMALL,
      input: words(700, 'c1'),
      context_management: cm,
    });
    const transcript = [words(700, 'c1'), prev.output_text];
    for (const tag of ['c2', 'c3']) {
      prev = await client.responses.create({
        model: SMALL,
        previous_response_id: prev.id,
        input: words(700, tag),
        context_management: cm,
      });
      transcript.push(words(700, tag), prev.output_text);
    }
    // c2 compacted (1,400+ tokens), c3 read the item, the reply to c2 and c3 (under 1,000): no second compaction.
    const seen = emu.seen(prev.id);
    expect(seen?.compaction?.messageCount).toBe(3);
    expect(seen?.messages.map((m) => m.text)).toEqual(transcript.slice(3, 5));
    expect(seen?.inputTokens).toBe(COMPACTION_ITEM_TOKENS + countTokens(transcript[3]) + 700);
  });

  it('compacts again on top of an earlier compaction: the new item absorbs it', async () => {
    const r1 = await client.responses.create({
      model: SMALL,
      input: words(1200, 'p1'),
      context_management: cm,
    });
    const r2 = await client.responses.create({
      model: SMALL,
      previous_response_id: r1.id,
      input: words(1200, 'p2'),
      context_management: cm,
    });
    const item = r2.output[0] as { type: string; encrypted_content: string };
    expect(item.type).toBe('compaction');
    const transcript = [
      { role: 'user' as const, text: words(1200, 'p1') },
      { role: 'assistant' as const, text: r1.output_text },
      { role: 'user' as const, text: words(1200, 'p2') },
    ];
    expect(emu.compaction(item.encrypted_content)).toMatchObject({
      messageCount: 3,
      first: transcript[0],
      last: transcript[2],
      digest: rollDigest('', transcript),
    });
  });

  it('refuses a threshold under 1,000 and a compaction item it did not make', async () => {
    const low = await raw('/responses', {
      model: SMALL,
      input: 'x',
      context_management: [{ type: 'compaction', compact_threshold: 500 }],
    });
    expect(low.status).toBe(400);
    expect(low.json.error).toMatchObject({
      param: 'context_management[0].compact_threshold',
      code: 'integer_below_min_value',
    });
    const forged = 'gAAAAABforgedcontentthatnobodysealedQQ==';
    const r = await raw('/responses', {
      model: SMALL,
      input: [{ type: 'compaction', encrypted_content: forged }, user('hi')],
    });
    expect(r).toEqual({
      status: 400,
      json: {
        error: {
          message: 'The encrypted content gAAA...QQ== could not be verified.',
          type: 'invalid_request_error',
          param: null,
          code: 'invalid_encrypted_content',
        },
      },
    });
  });
});

describe('POST /v1/responses/compact', () => {
  it('returns the user messages and a compaction item standing for the whole input', async () => {
    const input = [
      user(words(500, 'u1')),
      { role: 'assistant' as const, content: 'a1' },
      user(words(500, 'u2')),
    ];
    const c = await client.responses.compact({ model: SMALL, input });
    spec.assertValid('CompactResource', c);
    expect(c.object).toBe('response.compaction');
    expect(c.output.map((o) => o.type)).toEqual(['message', 'message', 'compaction']);
    expect(c.usage.input_tokens).toBe(1001);
    const item = c.output[2] as { encrypted_content: string };
    expect(emu.compaction(item.encrypted_content)?.messageCount).toBe(3);

    const next = await client.responses.create({
      model: SMALL,
      input: [...c.output, user('go on')] as OpenAI.Responses.ResponseInput,
    });
    expect(next.usage?.input_tokens).toBe(COMPACTION_ITEM_TOKENS + 2);
    expect(emu.seen(next.id)?.messages.map((m) => m.text)).toEqual(['go on']);
  });
});

describe('what the model read', () => {
  it('!context replies with the verbatim messages, the compaction and the input tokens', async () => {
    const r1 = await client.responses.create({
      model: SMALL,
      input: words(1100, 'start'),
      context_management: [{ type: 'compaction', compact_threshold: 1000 }],
    });
    const r2 = await client.responses.create({
      model: SMALL,
      previous_response_id: r1.id,
      input: '!context please',
    });
    const info = emu.compaction((r1.output[0] as { encrypted_content: string }).encrypted_content);
    const start = words(1100, 'start').slice(0, 40);
    expect(r2.output_text).toBe(
      `context · ${r2.usage?.input_tokens} input tokens · 2 msgs verbatim from assistant "${r1.output_text.slice(0, 40)}" · compaction of 1 msgs from user "${start}" to user "${start}" digest ${info?.digest}`,
    );
    const plain = await client.responses.create({ model: SMALL, input: '!context' });
    expect(plain.output_text).toBe(
      'context · 1 input tokens · 1 msgs verbatim from user "!context" · no compaction',
    );
  });
});

describe('long threads', () => {
  it('2,000 turns on a conversation with compaction: each turn reads the compaction and the turns after it', async () => {
    const conv = await client.conversations.create({});
    const transcript: { role: 'user' | 'assistant'; text: string }[] = [];
    const started = performance.now();
    for (let turn = 1; turn <= 2000; turn++) {
      const text = words(40, `turn${turn}`);
      transcript.push({ role: 'user', text });
      const r = await client.responses.create({
        model: SMALL,
        conversation: conv.id,
        input: text,
        context_management: [{ type: 'compaction', compact_threshold: 1000 }],
      });
      const seen = emu.seen(r.id);
      // Everything so far is either in the compaction or read verbatim, the latest message last.
      expect((seen?.compaction?.messageCount ?? 0) + (seen?.messages.length ?? 0)).toBe(transcript.length);
      expect(seen?.messages.at(-1)?.text).toBe(text);
      if (turn % 500 === 0 && seen?.compaction) {
        const covered = transcript.slice(0, seen.compaction.messageCount);
        expect(seen.compaction.digest).toBe(rollDigest('', covered));
      }
      transcript.push({ role: 'assistant', text: r.output_text });
    }
    const ms = performance.now() - started;
    console.log(`2,000 turns in ${Math.round(ms)} ms`);
    expect(emu.conversation(conv.id)?.items.length).toBeGreaterThan(4000);
  }, 120_000);
});
