// The cost of a fork with OpenAI's prompt caching, end to end: the real bot against the emulators. The alternatives
// after the first start once it has streamed its first token, so the provider has cached the prompt they share and
// bills it at the cached rate; what the bot records (/usage) is what the provider reported.
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_PRICES } from '../../src/core/budgets.ts';
import type { BackendKind } from '../../src/core/model.ts';
import type { RecordedRequest } from '../emulators/openai/index.ts';
import { openAISpecValidator } from '../emulators/openai/spec-validator.ts';
import { createWorld, MODEL, openVote, startThread, type World } from './harness.ts';

let world: World | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

const PRICE = DEFAULT_PRICES.get(MODEL)!;
/** A first message of about 1,300 tokens: the thread's history is over OpenAI's 1,024-token caching minimum. */
const LONG_PROMPT = `Here is my long story: ${Array.from({ length: 1300 }, (_, i) => `word${i % 50}`).join(' ')}`;

interface Spent {
  input: number;
  cached: number;
}

/** This thread's tokens today as /usage shows them: uncached input and cached input. */
async function threadUsage(w: World, threadId: string, userId: string): Promise<Spent> {
  const response = await w.discord
    .runCommand({ channelId: threadId, userId, name: 'usage', options: { of: 'thread' } })
    .response({ timeoutMs: 30_000 });
  const found = JSON.stringify(response.embeds).match(/input ([\d,]+) · cached ([\d,]+) · output/);
  if (!found) throw new Error(`no usage in ${JSON.stringify(response.embeds)}`);
  const n = (s: string) => Number(s.replaceAll(',', ''));
  return { input: n(found[1]!), cached: n(found[2]!) };
}

/** The fork's requests at the provider, in the order they started. */
function forkRequests(w: World, since: number): RecordedRequest[] {
  return w.openai.requests
    .slice(since)
    .filter((r) => r.route === 'POST /v1/responses' && r.status === 200)
    .sort((a, b) => a.startedAt - b.startedAt);
}

async function forkOnce(backend: BackendKind, options: { coldCache: boolean }) {
  world = await createWorld();
  const w = world;
  await w.startBot({ ALTERNATIVES_COOLDOWN_SECONDS: '0', BACKEND: backend });
  const alice = w.discord.createUser({ username: 'alice' });
  const threadId = await startThread(w, alice.id, LONG_PROMPT);
  const before = await threadUsage(w, threadId, alice.id);
  // A cold cache: the thread's turn was cached long ago and has expired since (or went to another machine).
  if (options.coldCache) w.openai.clearPromptCache();
  // A realistic wait for the first token: requests started together are then in flight together at the provider.
  w.openai.setLatency({ firstTokenMs: 300, tokensPerSecond: 200 });
  const since = w.openai.requests.length;
  await openVote(w, threadId, alice.id, { count: 3, prompt: 'one more idea?' });
  const after = await threadUsage(w, threadId, alice.id);
  const requests = forkRequests(w, since);
  expect(requests).toHaveLength(3);
  // One prompt_cache_key for the thread's turn and its alternatives, which does not hand over the thread id; the
  // bodies are what OpenAI's spec describes.
  const turn = w.openai.requests.find((r) => r.route === 'POST /v1/responses' && r.status === 200)!;
  const keys = [turn, ...requests].map((r) => (r.body as { prompt_cache_key?: string }).prompt_cache_key);
  expect(new Set(keys).size).toBe(1);
  expect(keys[0]).toMatch(/^tf-[\w-]{22}$/);
  expect(keys[0]).not.toContain(threadId);
  for (const r of requests) openAISpecValidator().assertValid('CreateResponse', r.body);
  const spent = { input: after.input - before.input, cached: after.cached - before.cached };
  const prompt = requests[0]!.seen!.inputTokens;
  return {
    cached: requests.map((r) => r.seen!.cachedTokens),
    prompt,
    spent,
    /** Billed input of the fork over one turn's: the same prompt, once, uncached. */
    ratio: (spent.input * PRICE.input + spent.cached * PRICE.cachedInput) / (prompt * PRICE.input),
  };
}

describe.each(['responses', 'conversations'] as const)('the cost of a fork (%s backend)', (backend) => {
  it('right after a turn: every alternative reads the history from the cache; the fork bills under 1.5 turns', async () => {
    const fork = await forkOnce(backend, { coldCache: false });
    expect(fork.prompt).toBeGreaterThan(1300);
    // The first reads the turn's prompt from the cache, the others the first one's whole prompt.
    expect(fork.cached[0]).toBeGreaterThanOrEqual(1280);
    expect(fork.cached[1]).toBe(Math.floor(fork.prompt / 128) * 128);
    expect(fork.cached[2]).toBe(Math.floor(fork.prompt / 128) * 128);
    // What the bot recorded is what the provider reported.
    expect(fork.spent).toEqual({
      input: 3 * fork.prompt - fork.cached.reduce((a, b) => a + b, 0),
      cached: fork.cached.reduce((a, b) => a + b, 0),
    });
    expect(fork.ratio).toBeLessThanOrEqual(1.5);
  }, 120_000);

  it('with a cold cache: the first pays the prompt, the others read it from the cache', async () => {
    const fork = await forkOnce(backend, { coldCache: true });
    const cachedPrefix = Math.floor(fork.prompt / 128) * 128;
    expect(fork.cached).toEqual([0, cachedPrefix, cachedPrefix]);
    expect(fork.spent.cached).toBe(2 * cachedPrefix);
    // One full prompt, then two at the cached rate (gpt-4.1-mini: a quarter) but for the last partial 128-token
    // block each: just over 1.5 turns, where three uncached requests bill 3.
    const expected = (fork.prompt + 2 * (cachedPrefix / 4 + fork.prompt - cachedPrefix)) / fork.prompt;
    expect(fork.ratio).toBeCloseTo(expected, 6);
    expect(fork.ratio).toBeLessThan(1.65);
  }, 120_000);
});
