/**
 * Prompt caching as OpenAI documents it: automatic for prompts of at least 1,024 tokens, hits in 128-token
 * increments of the longest cached prefix, `prompt_cache_key` in the routing, and a prefix cached only once a
 * request with it has been processed up to its first output token (so requests started together miss each other).
 *
 * The prompt is a chain of units: the instructions, then each item the model reads. A unit's digest covers what the
 * model sees of it (role, text, attachments; a compaction item's content), and the chain hash at each unit boundary
 * names the prefix up to it. Matching is at unit boundaries (a prefix that diverges inside a message is matched up
 * to the boundary before it), which is what a thread's turns and a fork's alternatives share.
 */
import { createHash } from 'node:crypto';
import { itemTokens } from './context.ts';
import { messageOf } from './input.ts';
import { countTokens } from './reply.ts';
import type { Json, ReplyMessage } from './types.ts';

export const CACHE_MIN_TOKENS = 1024;
export const CACHE_INCREMENT = 128;
/** In-memory retention: evicted after this long unused (the docs: 5 to 10 minutes of inactivity, up to an hour). */
export const CACHE_IDLE_MS = 10 * 60_000;
export const CACHE_MAX_AGE_MS = 60 * 60_000;
/** Share of the time to first token a fully cached prompt saves ("up to 80%" in the docs). */
export const CACHED_LATENCY_SAVING = 0.8;

interface Entry {
  /** Tokens of this prefix that are cached (the prefix, less the part of the last 128-token block past the prompt). */
  tokens: number;
  created: number;
  used: number;
}

/** A prompt as the cache sees it: the chain hash and cumulative tokens at each unit boundary. */
export interface PromptUnits {
  hashes: string[];
  ends: number[];
  total: number;
}

const digests = new WeakMap<Json, string>();
const sha = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 32);

function messageDigest(m: ReplyMessage): string {
  return sha(`${m.role}\n${m.text}\n${(m.attachments ?? []).map((a) => a.digest).join(',')}`);
}

function itemDigest(item: Json): string {
  const known = digests.get(item);
  if (known) return known;
  const m = messageOf(item);
  let d: string;
  if (m) d = messageDigest(m);
  else if (item.type === 'compaction') d = sha(`compaction\n${String(item.encrypted_content)}`);
  else {
    const { id: _id, ...rest } = item;
    d = sha(JSON.stringify(rest));
  }
  digests.set(item, d);
  return d;
}

function chain(units: { digest: string; tokens: number }[]): PromptUnits {
  const hashes: string[] = [];
  const ends: number[] = [];
  let h = '';
  let total = 0;
  for (const u of units) {
    h = sha(`${h}|${u.digest}`);
    total += u.tokens;
    hashes.push(h);
    ends.push(total);
  }
  return { hashes, ends, total };
}

/** The Responses API prompt: instructions, then the items read (as rendered: from the latest compaction item on). */
export function responsesPrompt(instructions: string | undefined, items: readonly Json[]): PromptUnits {
  return chain([
    { digest: sha(`instructions\n${instructions ?? ''}`), tokens: countTokens(instructions) },
    ...items.map((item) => ({ digest: itemDigest(item), tokens: itemTokens(item) })),
  ]);
}

/** The Chat Completions prompt: its messages (a system message is one of them). */
export function chatPrompt(messages: readonly ReplyMessage[]): PromptUnits {
  return chain(messages.map((m) => ({ digest: messageDigest(m), tokens: countTokens(m.text) })));
}

export class PromptCache {
  enabled = true;
  /** Routing partition (model and prompt_cache_key) -> prefix chain hash -> entry. */
  private readonly partitions = new Map<string, Map<string, Entry>>();

  /** Requests with another prompt_cache_key go to other machines: they never share a cache. */
  static partition(model: string, key: string | undefined): string {
    return `${model}\n${key ?? ''}`;
  }

  /** Cached tokens for this prompt: the longest cached prefix in 128-token increments, 0 under 1,024 tokens. */
  lookup(partition: string, prompt: PromptUnits, now: number = Date.now()): number {
    if (!this.enabled || prompt.total < CACHE_MIN_TOKENS) return 0;
    const entries = this.partitions.get(partition);
    if (!entries) return 0;
    let best = 0;
    for (const h of prompt.hashes) {
      const e = entries.get(h);
      if (!e || now - e.used > CACHE_IDLE_MS || now - e.created > CACHE_MAX_AGE_MS) break;
      e.used = now;
      best = e.tokens;
    }
    const hit = Math.floor(best / CACHE_INCREMENT) * CACHE_INCREMENT;
    return hit >= CACHE_MIN_TOKENS ? hit : 0;
  }

  /** Caches every prefix of the prompt (call it when the request reaches its first output token). */
  write(partition: string, prompt: PromptUnits, now: number = Date.now()): void {
    if (!this.enabled || prompt.total < CACHE_MIN_TOKENS) return;
    let entries = this.partitions.get(partition);
    if (!entries) {
      entries = new Map();
      this.partitions.set(partition, entries);
    }
    // The last partial 128-token block of the prompt is not cached.
    const cacheable = Math.floor(prompt.total / CACHE_INCREMENT) * CACHE_INCREMENT;
    prompt.hashes.forEach((h, i) => {
      const tokens = Math.min(prompt.ends[i] ?? 0, cacheable);
      const e = entries.get(h);
      if (e && now - e.used <= CACHE_IDLE_MS && now - e.created <= CACHE_MAX_AGE_MS) {
        e.used = now;
        e.tokens = Math.max(e.tokens, tokens);
      } else entries.set(h, { tokens, created: now, used: now });
    });
  }

  clear(): void {
    this.partitions.clear();
  }
}

/** Time to first token for a prompt with `cached` of `total` tokens read from the cache. */
export function firstTokenMs(base: number, cached: number, total: number): number {
  if (total <= 0 || cached <= 0) return base;
  return base * (1 - CACHED_LATENCY_SAVING * (cached / total));
}
