/**
 * The deterministic "model": the reply depends only on what the model sees (model, instructions, messages,
 * temperature, choice index), so a test can compute the expected text with `replyFor` and tell which history
 * produced a reply.
 */
import { createHash } from 'node:crypto';
import type { Attachment, ReplyInput } from './types.ts';

export const REFUSAL_TEXT = "I can't help with that.";
export const THINK_PREFIX = '<think>hidden reasoning</think>';
export const MENTIONS = '@everyone <@123456789012345678>';
const MAX_LONG = 200_000;
const MAX_TOKENS = 200_000;

export interface GeneratedReply {
  /** The text of the reply (for a refusal, the refusal text). */
  text: string;
  /** True when the output is a `refusal` content part instead of `output_text`. */
  refusal: boolean;
}

/** Whitespace-preserving word tokens: "hello world" -> ["hello ", "world"]. Joining them gives back the text. */
export function tokenize(text: string): string[] {
  return text.match(/\S+\s*|\s+/g) ?? [];
}

export function countTokens(text: string | undefined): number {
  return text ? tokenize(text).length : 0;
}

/** 8 hex chars of sha256 of the JSON of [role, text] pairs. */
export function digestOf(input: ReplyInput): string {
  const pairs = input.messages.map((m) => [m.role, m.text]);
  return createHash('sha256').update(JSON.stringify(pairs)).digest('hex').slice(0, 8);
}

function lastUserText(input: ReplyInput): string {
  for (let i = input.messages.length - 1; i >= 0; i--) {
    const m = input.messages[i];
    if (m?.role === 'user') return m.text;
  }
  return '';
}

/**
 * What the reply says of the images and files the model saw, in the order it saw them:
 * `saw 2 images, 1 file [img 1a2b3c4d, img 5e6f7a8b, file 9c0d1e2f]` (digests: sha256 of the bytes, 8 hex chars).
 */
export function attachmentsLine(seen: readonly Attachment[]): string {
  const images = seen.filter((a) => a.kind === 'image').length;
  const files = seen.length - images;
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  const list = seen.map((a) => `${a.kind === 'image' ? 'img' : 'file'} ${a.digest}`).join(', ');
  return `saw ${plural(images, 'image')}, ${plural(files, 'file')} [${list}]`;
}

/** The one-line reply: `[model] reply k to "..." · saw n msgs · digest xxxxxxxx[ · style "..."][ · t=..][ · choice i]`. */
function headline(input: ReplyInput): string {
  const k = input.messages.filter((m) => m.role === 'assistant').length + 1;
  let line = `[${input.model}] reply ${k} to "${lastUserText(input).slice(0, 60)}" · saw ${input.messages.length} msgs · digest ${digestOf(input)}`;
  const seen = input.messages.flatMap((m) => m.attachments ?? []);
  if (seen.length > 0) line += ` · ${attachmentsLine(seen)}`;
  if (input.instructions) line += ` · style "${input.instructions.slice(0, 40)}"`;
  if (input.temperature !== undefined) line += ` · t=${input.temperature}`;
  if (input.choiceIndex !== undefined && input.choiceIndex > 0) line += ` · choice ${input.choiceIndex}`;
  return line;
}

const WORDS = [
  'branch',
  'thread',
  'fork',
  'vote',
  'reply',
  'model',
  'stream',
  'token',
  'message',
  'context',
  'history',
  'choice',
  'queue',
  'lock',
  'turn',
  'answer',
  'emulator',
  'deterministic',
  'paragraph',
  'discord',
];

/** A small deterministic PRNG seeded from a hex digest. */
function prng(seedHex: string): () => number {
  let state = Number.parseInt(seedHex, 16) >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state;
  };
}

function sentence(next: () => number): string {
  const n = 6 + (next() % 9);
  const words: string[] = [];
  for (let i = 0; i < n; i++) words.push(WORDS[next() % WORDS.length] ?? 'word');
  const s = words.join(' ');
  return `${s.charAt(0).toUpperCase()}${s.slice(1)}.`;
}

function paragraph(next: () => number, targetChars: number): string {
  let p = '';
  while (p.length < targetChars) p += (p ? ' ' : '') + sentence(next);
  return p;
}

/** About `size` characters: the headline, paragraphs, a fenced ```ts block of many lines, more paragraphs. */
function longText(head: string, size: number, seed: string): string {
  const next = prng(seed);
  const parts: string[] = [head];
  let used = head.length;
  const codeBudget = Math.max(200, Math.floor(size * 0.35));
  const beforeBudget = Math.floor((size - codeBudget) / 2);
  while (used < beforeBudget) {
    const p = paragraph(next, Math.min(420, Math.max(60, beforeBudget - used)));
    parts.push(p);
    used += p.length + 2;
  }
  const lines: string[] = ['```ts'];
  let codeLen = 6;
  for (let i = 0; codeLen < codeBudget; i++) {
    const line = `const ${WORDS[next() % WORDS.length]}${i} = compute(${i}, '${seed}'); // line ${i}`;
    lines.push(line);
    codeLen += line.length + 1;
  }
  lines.push('```');
  const code = lines.join('\n');
  parts.push(code);
  used += code.length + 2;
  while (used < size) {
    const p = paragraph(next, Math.min(420, Math.max(60, size - used)));
    parts.push(p);
    used += p.length + 2;
  }
  return parts.join('\n\n');
}

/** Exactly `n` tokens of filler words. */
function filler(n: number): string {
  const words: string[] = [];
  for (let i = 0; i < n; i++) words.push(WORDS[i % WORDS.length] ?? 'word');
  return words.join(' ');
}

function magicNumber(text: string, word: string, max: number): number | undefined {
  const m = new RegExp(`!${word}\\s+(\\d+)`).exec(text);
  if (!m?.[1]) return undefined;
  return Math.min(Number.parseInt(m[1], 10), max);
}

const quote = (m: { role: string; text: string } | undefined): string =>
  m ? `${m.role} "${m.text.slice(0, 40)}"` : 'nothing';

/**
 * The `!context` reply: what the model read, in one line, e.g.
 * `context · 812 input tokens · 6 msgs verbatim from user "turn 994" · compaction of 1988 msgs from user "turn 1" to
 * assistant "..." digest 0123456789abcdef` (or `· no compaction`).
 */
export function contextLine(input: ReplyInput): string {
  let line = `context · ${input.inputTokens ?? 0} input tokens · ${input.messages.length} msgs verbatim from ${quote(input.messages[0])}`;
  const c = input.compaction;
  if (!c) return `${line} · no compaction`;
  line += ` · compaction of ${c.messageCount} msgs from ${quote(c.first)} to ${quote(c.last)} digest ${c.digest}`;
  return line;
}

/**
 * The reply and whether it is a refusal. Magic words in the last user message: `!refuse` (refusal part),
 * `!tokens N` (exactly N filler tokens, nothing else), `!long N` (about N characters with a ```ts block),
 * `!think` (prefix `<think>hidden reasoning</think>`), `!mention` (appends `@everyone <@123456789012345678>`),
 * `!context` (one line saying what the model read: see contextLine).
 * Precedence: !refuse, then !context, then !tokens, then the others combine.
 */
export function generateReply(input: ReplyInput): GeneratedReply {
  const last = lastUserText(input);
  if (/!refuse\b/.test(last)) return { text: REFUSAL_TEXT, refusal: true };
  if (/!context\b/.test(last)) return { text: contextLine(input), refusal: false };
  const tokens = magicNumber(last, 'tokens', MAX_TOKENS);
  if (tokens !== undefined) return { text: filler(tokens), refusal: false };
  const head = headline(input);
  const long = magicNumber(last, 'long', MAX_LONG);
  let text = long !== undefined ? longText(head, long, digestOf(input)) : head;
  if (/!mention\b/.test(last)) text += ` · ${MENTIONS}`;
  if (/!think\b/.test(last)) text = `${THINK_PREFIX}${text}`;
  return { text, refusal: false };
}

/** The deterministic reply text for what the model sees (for `!refuse`, the refusal text). */
export function replyFor(input: ReplyInput): string {
  return generateReply(input).text;
}
