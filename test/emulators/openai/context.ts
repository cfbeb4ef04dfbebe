/**
 * The context window: per-model windows, token counts of items, compaction items (sealed with the emulator's own
 * key so it can read them back), truncation, and the rendering of a request's items into what the model reads.
 *
 * Tokens are the emulator's own `countTokens` (whitespace-delimited words), not tiktoken: the instructions' tokens
 * plus each message's text tokens, COMPACTION_ITEM_TOKENS per compaction item, 0 for other item types.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { badRequest } from './errors.ts';
import { messageOf } from './input.ts';
import { countTokens } from './reply.ts';
import type { CompactionInfo, Json, ReplyMessage } from './types.ts';

/** Context windows, in tokens, of the models the emulator knows (others get DEFAULT_CONTEXT_WINDOW). */
export const CONTEXT_WINDOWS: Readonly<Record<string, number>> = {
  'gpt-4.1': 1_047_576,
  'gpt-4.1-mini': 1_047_576,
  'gpt-5-mini': 400_000,
  'gpt-4o-mini': 128_000,
  'gpt-3.5-turbo': 16_385,
  /** A small window, so tests reach its end in a few turns. */
  'tf-test-8k': 8_192,
};
export const DEFAULT_CONTEXT_WINDOW = 200_000;
/** What a compaction item counts for in the input, whatever it stands for. */
export const COMPACTION_ITEM_TOKENS = 64;
/** OpenAI's minimum `compact_threshold` (ContextManagementParam in the spec). */
export const MIN_COMPACT_THRESHOLD = 1000;
/** Threshold when `compact_threshold` is null or left out: a guess (the docs do not say). */
export const DEFAULT_COMPACT_THRESHOLD_RATIO = 0.8;

export const CONTEXT_EXCEEDED_MESSAGE =
  'Your input exceeds the context window of this model. Please adjust your input and try again.';

export function contextExceeded(): Error {
  return badRequest(CONTEXT_EXCEEDED_MESSAGE, 'input', 'context_length_exceeded');
}

// ---- Compaction items -------------------------------------------------------------------------------------------

/** The emulator's sealing key (AES-256-GCM): a compaction item from another emulator cannot be read. */
export class CompactionSealer {
  private readonly key = randomBytes(32);
  /** encrypted_content -> what it stands for (decrypting again for every request would be wasted work). */
  private readonly opened = new Map<string, CompactionInfo>();

  seal(info: CompactionInfo): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const body = Buffer.concat([cipher.update(JSON.stringify(info), 'utf8'), cipher.final()]);
    // 'gAAAAA' + base64, the look of OpenAI's encrypted content (a Fernet token).
    const sealed = `gAAAAA${Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64')}`;
    this.opened.set(sealed, info);
    return sealed;
  }

  /** What the item stands for, or undefined when it was not sealed by this emulator or was altered. */
  open(sealed: string): CompactionInfo | undefined {
    const known = this.opened.get(sealed);
    if (known) return known;
    if (!sealed.startsWith('gAAAAA')) return undefined;
    try {
      const raw = Buffer.from(sealed.slice(6), 'base64');
      const decipher = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, 12), {
        authTagLength: 16,
      });
      decipher.setAuthTag(raw.subarray(12, 28));
      const text = Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
      const info = JSON.parse(text) as CompactionInfo;
      this.opened.set(sealed, info);
      return info;
    } catch {
      return undefined;
    }
  }
}

/** OpenAI's refusal of an encrypted_content it cannot read: "The encrypted content gAAA...DQ== could not be verified." */
export function unverifiable(sealed: string): Error {
  const shown = sealed.length > 8 ? `${sealed.slice(0, 4)}...${sealed.slice(-4)}` : sealed;
  return badRequest(
    `The encrypted content ${shown} could not be verified.`,
    null,
    'invalid_encrypted_content',
  );
}

/**
 * A rolling digest of messages (role and text), 16 hex chars: `rollDigest(rollDigest('', a), b)` equals
 * `rollDigest('', [...a, ...b])`, so a compaction extends the digest of the one it absorbs without re-reading
 * history, and a test can compute the digest of any prefix of its transcript.
 */
export function rollDigest(start: string, messages: readonly Pick<ReplyMessage, 'role' | 'text'>[]): string {
  let d = start;
  for (const m of messages) {
    d = createHash('sha256').update(`${d}\n${m.role}\n${m.text}`).digest('hex').slice(0, 16);
  }
  return d;
}

/** What a new compaction item stands for: the compaction it absorbs (if any), then `messages`. */
export function compactionOf(
  absorbed: CompactionInfo | undefined,
  messages: ReplyMessage[],
  tokens: number,
): CompactionInfo {
  const first = absorbed?.first ?? messages[0];
  const last = messages[messages.length - 1] ?? absorbed?.last;
  const info: CompactionInfo = {
    messageCount: (absorbed?.messageCount ?? 0) + messages.length,
    digest: rollDigest(absorbed?.digest ?? '', messages),
    compactedTokens: tokens,
  };
  if (first) info.first = { role: first.role, text: first.text };
  if (last) info.last = { role: last.role, text: last.text };
  return info;
}

// ---- Rendering -----------------------------------------------------------------------------------------------------

const tokenCache = new WeakMap<Json, number>();

/** Tokens an item counts for in the input (cached per item object: stored items are never changed). */
export function itemTokens(item: Json): number {
  const known = tokenCache.get(item);
  if (known !== undefined) return known;
  let n = 0;
  if (item.type === 'compaction') n = COMPACTION_ITEM_TOKENS;
  else {
    const m = messageOf(item);
    if (m) n = countTokens(m.text);
  }
  tokenCache.set(item, n);
  return n;
}

/** Index of the latest compaction item, or -1: looks back from the end, so it costs what follows that item. */
export function latestCompaction(items: readonly Json[]): number {
  for (let i = items.length - 1; i >= 0; i--) if (items[i]?.type === 'compaction') return i;
  return -1;
}

export interface Rendered {
  /** The items the model reads: from the latest compaction item on, less what truncation dropped. */
  items: Json[];
  messages: ReplyMessage[];
  /** What the first item stands for, when it is a compaction item. */
  compaction: CompactionInfo | undefined;
  inputTokens: number;
  /** Items dropped by `truncation: 'auto'`. */
  truncatedItems: number;
}

/**
 * What the model reads of `all` (history then input): everything before the latest compaction item is ignored (the
 * item stands for it); with `truncation: 'auto'` the oldest items are dropped until the input fits the window (the
 * last item is never dropped). Throws context_length_exceeded when it still does not fit.
 */
export function render(
  all: readonly Json[],
  opts: { instructions: string | undefined; window: number; truncation: boolean; sealer: CompactionSealer },
): Rendered {
  const from = Math.max(0, latestCompaction(all));
  let items = all.slice(from);
  const fixed = countTokens(opts.instructions);
  let tokens = fixed;
  for (const item of items) tokens += itemTokens(item);
  let dropped = 0;
  if (opts.truncation && tokens > opts.window) {
    while (dropped < items.length - 1 && tokens > opts.window) {
      tokens -= itemTokens(items[dropped] as Json);
      dropped++;
    }
    items = items.slice(dropped);
  }
  if (tokens > opts.window) throw contextExceeded();
  let compaction: CompactionInfo | undefined;
  const messages: ReplyMessage[] = [];
  for (const item of items) {
    if (item.type === 'compaction') {
      const sealed = String(item.encrypted_content ?? '');
      const info = opts.sealer.open(sealed);
      if (!info) throw unverifiable(sealed);
      compaction = info;
      continue;
    }
    const m = messageOf(item);
    if (m) messages.push(m);
  }
  return { items, messages, compaction, inputTokens: tokens, truncatedItems: dropped };
}
