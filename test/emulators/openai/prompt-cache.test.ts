/** Prompt caching: thresholds and increments, the first-token rule, prompt_cache_key, both APIs' usage fields. */
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createOpenAIEmulator, type OpenAIEmulator } from './index.ts';
import { openAISpecValidator } from './spec-validator.ts';

const MODEL = 'gpt-4.1-mini';
const spec = openAISpecValidator();
let emu: OpenAIEmulator;
let client: OpenAI;

const words = (n: number, tag: string) => [tag, ...Array.from({ length: n - 1 }, () => 'w')].join(' ');

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

const cachedOf = (r: OpenAI.Responses.Response) => r.usage?.input_tokens_details.cached_tokens;

describe('prompt caching on the Responses API', () => {
  it('caches prompts of 1,024 tokens or more, and hits in 128-token increments of the cached prefix', async () => {
    const short = await client.responses.create({ model: MODEL, input: words(1000, 'short') });
    const again = await client.responses.create({
      model: MODEL,
      previous_response_id: short.id,
      input: 'more',
    });
    expect(cachedOf(again)).toBe(0); // the first prompt (1,000 tokens) was too short to be cached

    const first = await client.responses.create({
      model: MODEL,
      instructions: 'be kind',
      input: words(1500, 'a'),
    });
    expect(cachedOf(first)).toBe(0);
    const second = await client.responses.create({
      model: MODEL,
      instructions: 'be kind',
      previous_response_id: first.id,
      input: 'next',
    });
    spec.assertValid('Response', second);
    // 1,502 tokens were cached as 1,408 (11 x 128); the reply and 'next' are new.
    expect(cachedOf(second)).toBe(1408);
    expect(emu.seen(second.id)?.cachedTokens).toBe(1408);
    // Other instructions: the prefix differs from its first token.
    const other = await client.responses.create({
      model: MODEL,
      instructions: 'be terse',
      previous_response_id: first.id,
      input: 'next',
    });
    expect(cachedOf(other)).toBe(0);
  });

  it('the same prefix through a conversation, an input array and a chain hits alike', async () => {
    const history = [
      { role: 'user' as const, content: words(1300, 'u1') },
      { role: 'assistant' as const, content: 'a1' },
    ];
    const conv = await client.conversations.create({ items: history });
    const onConv = await client.responses.create({ model: MODEL, conversation: conv.id, input: 'q1' });
    expect(cachedOf(onConv)).toBe(0);
    const asArray = await client.responses.create({
      model: MODEL,
      input: [...history, { role: 'user', content: 'q2' }],
      store: false,
    });
    expect(cachedOf(asArray)).toBe(1280);
  });

  it('requests started together miss; one started after the first token hits', async () => {
    emu.setLatency({ firstTokenMs: 400 });
    const body = { model: MODEL, input: words(2000, 'fork') };
    const together = await Promise.all([1, 2, 3].map(() => client.responses.create(body)));
    expect(together.map(cachedOf)).toEqual([0, 0, 0]);

    emu.clearPromptCache();
    const stream = await client.responses.create({ ...body, stream: true });
    const later: Promise<OpenAI.Responses.Response>[] = [];
    for await (const ev of stream) {
      if (ev.type === 'response.output_text.delta' && later.length === 0)
        later.push(client.responses.create(body), client.responses.create(body));
    }
    expect((await Promise.all(later)).map(cachedOf)).toEqual([1920, 1920]);
  });

  it('prompt_cache_key routes: another key misses the prefix, the same key hits; the response echoes it', async () => {
    const body = { model: MODEL, input: words(1200, 'keyed') };
    const a = await client.responses.create({ ...body, prompt_cache_key: 'thread-a' });
    expect(a.prompt_cache_key).toBe('thread-a');
    expect(cachedOf(await client.responses.create({ ...body, prompt_cache_key: 'thread-b' }))).toBe(0);
    expect(cachedOf(await client.responses.create({ ...body, prompt_cache_key: 'thread-a' }))).toBe(1152);
    expect(cachedOf(await client.responses.create(body))).toBe(0);
  });

  it('is off with setPromptCaching(false), back on after reset', async () => {
    emu.setPromptCaching(false);
    const body = { model: MODEL, input: words(1200, 'off') };
    await client.responses.create(body);
    expect(cachedOf(await client.responses.create(body))).toBe(0);
    emu.reset();
    await client.responses.create(body);
    expect(cachedOf(await client.responses.create(body))).toBe(1152);
  });
});

describe('prompt caching on Chat Completions', () => {
  it('reports prompt_tokens_details.cached_tokens, streamed and not', async () => {
    const messages = [
      { role: 'system' as const, content: 'You are a bot.' },
      { role: 'user' as const, content: words(1100, 'chat') },
    ];
    const first = await client.chat.completions.create({ model: MODEL, messages, prompt_cache_key: 'k' });
    expect(first.usage?.prompt_tokens_details?.cached_tokens).toBe(0);
    const next = await client.chat.completions.create({
      model: MODEL,
      messages: [...messages, { role: 'assistant', content: 'ok' }, { role: 'user', content: 'and?' }],
      prompt_cache_key: 'k',
    });
    spec.assertValid('CreateChatCompletionResponse', next);
    expect(next.usage?.prompt_tokens_details?.cached_tokens).toBe(1024);
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages,
      prompt_cache_key: 'k',
      stream: true,
      stream_options: { include_usage: true },
    });
    let cached: number | undefined;
    for await (const chunk of stream)
      if (chunk.usage) cached = chunk.usage.prompt_tokens_details?.cached_tokens;
    expect(cached).toBe(1024);
  });
});
