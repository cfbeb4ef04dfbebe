/**
 * A reasoning model's `<think>…</think>` blocks, hidden from its reply while it streams and once it is whole.
 *
 * The rules were first written as four regular expressions, applied in turn:
 * 1. a run of blocks at the very start (closed, or the last one still streaming), with the whitespace around them;
 * 2. every closed block left (`<think…>` up to the first `</think>` after it);
 * 3. an opening tag whose closing tag has not streamed in yet, and everything after it;
 * 4. a reply that is nothing but an opening tag arriving in pieces (`<thi`, `<think type="x"`): showing that for
 *    one edit would flash markup at the reader. Only such a reply is hidden, so prose ending in "<" survives.
 * Tags match in any case; an opening tag is `<think` followed by a non-word character and ends at the first `>`, so
 * `<thinking>` is prose. Step 3 reads what steps 1 and 2 left, joined: "<th" + a removed block + "ink>" is an opening
 * tag there.
 *
 * Run on every streamed delta, those expressions cost time proportional to the whole reply each time, and far more
 * on a reply full of unclosed `<think` (each one scanned to the end). The same rules are kept here as a scanner that
 * reads each character once: {@link createThinkFilter} keeps its state between deltas, and {@link stripThink} is one
 * pass of it. test/core/strip-think.test.ts holds the expressions and checks both against them on random input.
 */

/** What {@link createThinkFilter} returns. */
export interface ThinkFilter {
  /**
   * Takes the next piece of the reply and returns the visible text so far: exactly `stripThink` of everything
   * pushed. Costs time in proportion to the piece, not to the reply.
   */
  push(delta: string): string;
  /** The visible text so far, as the last `push` returned it ('' before any). */
  readonly text: string;
}

/**
 * Removes a reasoning model's `<think>…</think>` blocks from its reply (case-insensitive, spanning lines, any number
 * of them), and also a trailing `<think>` whose closing tag has not arrived yet, so a reply can be shown while it
 * streams. Whitespace left at the start by a removed leading block is dropped; text that had no leading block keeps
 * its leading whitespace.
 */
export function stripThink(text: string): string {
  return createThinkFilter().push(text);
}

const LT = 0x3c; // <
const GT = 0x3e; // >
const SLASH = 0x2f;
/** "think" in lower case; `code | 0x20` lowers an ASCII letter (a case-insensitive regex matches only those). */
const THINK = [0x74, 0x68, 0x69, 0x6e, 0x6b];

// Where the scanner is in the raw text.
/** Outside any block, no tag begun. */
const TEXT = 0;
/** "<", "<t" … "<think": an opening tag may be starting (`tagLength` characters so far). */
const TAG = 1;
/** "<think" and a non-word character: an opening tag, until its ">". */
const ATTRIBUTES = 2;
/** Inside a block, looking for its closing tag (`closeLength` characters of "</think" so far). */
const BLOCK = 3;
/** After a leading block: whitespace is dropped until the next block or the reply. */
const GAP = 4;

// The shape of a text, for rule 4: only whitespace, an opening tag arriving in pieces, or anything else.
/** Only whitespace (or nothing). */
const BLANK = 0;
// 1 to 6: whitespace, then "<", "<t", "<th", "<thi", "<thin", "<think".
const OPENING = 6;
/** "<think", whitespace, then anything but ">". */
const OPENING_WITH_ATTRIBUTES = 7;
const OTHER = 8;

const isPartialTag = (shape: number): boolean => shape !== BLANK && shape !== OTHER;

function nextShape(shape: number, code: number): number {
  if (shape === BLANK) return isSpace(code) ? BLANK : code === LT ? 1 : OTHER;
  if (shape < OPENING) return (code | 0x20) === THINK[shape - 1] ? shape + 1 : OTHER;
  if (shape === OPENING) return isSpace(code) ? OPENING_WITH_ATTRIBUTES : OTHER;
  if (shape === OPENING_WITH_ATTRIBUTES) return code === GT ? OTHER : shape;
  return OTHER;
}

function advanceShape(shape: number, text: string, from: number, to: number): number {
  let next = shape;
  for (let i = from; i < to && next !== OTHER; i++) next = nextShape(next, text.charCodeAt(i));
  return next;
}

/** JavaScript's `\s`. */
function isSpace(code: number): boolean {
  return (
    code === 0x20 ||
    (code >= 0x09 && code <= 0x0d) ||
    code === 0xa0 ||
    code === 0x1680 ||
    (code >= 0x2000 && code <= 0x200a) ||
    code === 0x2028 ||
    code === 0x2029 ||
    code === 0x202f ||
    code === 0x205f ||
    code === 0x3000 ||
    code === 0xfeff
  );
}

/** A regex word character (`\w`): what `\b` in `<think\b` must not be followed by. */
function isWordCharacter(code: number): boolean {
  const lower = code | 0x20;
  return (lower >= 0x61 && lower <= 0x7a) || (code >= 0x30 && code <= 0x39) || code === 0x5f;
}

function contains(text: string, code: number, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (text.charCodeAt(i) === code) return true;
  return false;
}

/**
 * Creates a filter that takes a streamed reply delta by delta and returns, after each, what {@link stripThink} would
 * return for everything so far, in time proportional to the delta. A tag that may be starting is held apart until the
 * characters after it tell what it is. The text returned is built by appending to the text returned before whenever
 * it only grew, so that a reader who has it stored flat (V8 does so in place when it is read) makes the next one cheap
 * to read too.
 */
export function createThinkFilter(): ThinkFilter {
  let mode = TEXT;
  /** Nothing but whitespace kept so far: a block opening now is a leading one (rule 1). */
  let leading = true;
  let tagLength = 0;
  let closeLength = 0;
  /** TAG: the tag so far (at most "<think"), read again as text if it proves not to be one. */
  let pending = '';
  /** TAG and ATTRIBUTES: the kept text and the tag so far, shown as they are until the tag opens a block. */
  let withTag = '';
  let pendingShape = BLANK;

  // What is kept: the raw text outside closed blocks (and, while `leading`, only whitespace). Its end may spell part of
  // "<think" (`tailLength` characters), possibly across removed blocks (rule 3 reads the joined text).
  let kept = '';
  let tailLength = 0;
  /** The kept text before that "<". */
  let beforeTail = '';
  let keptShape = BLANK;
  let tailShape = BLANK;
  /** Kept text before the first "<think" and non-word character spelled across removed blocks, once there is one. */
  let beforeJoinedTag: string | undefined;
  let joinedTagShape = BLANK;
  /** Set once the visible text can no longer change: a joined opening tag got its ">". */
  let settled: string | undefined;
  let text = '';

  /** Keeps `source[from, to)`; `joined`, when given, is the kept text with it already appended. */
  const appendKept = (source: string, from: number, to: number, joined?: string): void => {
    if (from >= to) return;
    if (leading) {
      for (let i = from; i < to; i++) {
        if (!isSpace(source.charCodeAt(i))) {
          leading = false;
          break;
        }
      }
    }
    const before = kept;
    kept = joined ?? kept + source.slice(from, to);
    // The shape of the kept text up to `shapeAt`.
    let shape = keptShape;
    let shapeAt = from;
    let i = from;
    let closingFrom = from;
    while (beforeJoinedTag === undefined && i < to) {
      if (tailLength === 0) {
        const lt = source.indexOf('<', i);
        if (lt < 0 || lt >= to) break;
        beforeTail = lt === from ? before : before + source.slice(from, lt);
        shape = advanceShape(shape, source, shapeAt, lt);
        shapeAt = lt;
        tailShape = shape;
        tailLength = 1;
        i = lt + 1;
      } else if (tailLength < 6) {
        if ((source.charCodeAt(i) | 0x20) === THINK[tailLength - 1]) {
          tailLength++;
          i++;
        } else tailLength = 0;
      } else if (isWordCharacter(source.charCodeAt(i))) {
        tailLength = 0;
      } else {
        beforeJoinedTag = beforeTail;
        joinedTagShape = tailShape;
        tailLength = 0;
        closingFrom = i;
      }
    }
    keptShape = advanceShape(shape, source, shapeAt, to);
    if (beforeJoinedTag !== undefined && contains(source, GT, closingFrom, to)) {
      settled = isPartialTag(joinedTagShape) ? '' : beforeJoinedTag;
    }
  };

  const dropTag = (): void => {
    const tag = pending;
    pending = '';
    mode = TEXT;
    appendKept(tag, 0, tag.length, withTag);
  };

  const openBlock = (): void => {
    mode = BLOCK;
    closeLength = 0;
    pending = '';
    withTag = '';
    // A leading block takes the whitespace before it (all that is kept while `leading`).
    if (leading) kept = '';
  };

  /** Scans a block for "</think", whitespace, ">"; returns where the scan stopped. */
  const scanBlock = (delta: string, from: number): number => {
    let i = from;
    while (i < delta.length) {
      if (closeLength === 0) {
        const lt = delta.indexOf('<', i);
        if (lt < 0) return delta.length;
        closeLength = 1;
        i = lt + 1;
        continue;
      }
      const code = delta.charCodeAt(i);
      if (closeLength === 7) {
        if (isSpace(code)) i++;
        else if (code === GT) {
          mode = leading ? GAP : TEXT;
          return i + 1;
        } else closeLength = 0;
      } else if (closeLength === 1 ? code === SLASH : (code | 0x20) === THINK[closeLength - 2]) {
        closeLength++;
        i++;
      } else closeLength = 0;
    }
    return i;
  };

  const visible = (): string => {
    if (mode === GAP || (mode === BLOCK && leading)) return '';
    if (mode === BLOCK) {
      // Rule 3 cuts at the first opening tag followed by a ">": the open block's own tag has one, and so has a tag
      // spelled across removed blocks before it.
      if (beforeJoinedTag !== undefined) return isPartialTag(joinedTagShape) ? '' : beforeJoinedTag;
      // The kept text ends with "<think" and the raw text goes on with "<": the tag is the kept one.
      if (tailLength === 6) return isPartialTag(tailShape) ? '' : beforeTail;
      return isPartialTag(keptShape) ? '' : kept;
    }
    // No ">" after any opening tag yet: nothing is cut.
    if (mode === TEXT) return isPartialTag(keptShape) ? '' : kept;
    return isPartialTag(pendingShape) ? '' : withTag;
  };

  return {
    push(delta) {
      let i = 0;
      while (settled === undefined && i < delta.length) {
        switch (mode) {
          case GAP:
            while (i < delta.length && isSpace(delta.charCodeAt(i))) i++;
            if (i < delta.length) mode = TEXT;
            break;
          case TEXT: {
            const lt = delta.indexOf('<', i);
            const end = lt < 0 ? delta.length : lt;
            appendKept(delta, i, end);
            i = end;
            if (lt >= 0) {
              mode = TAG;
              tagLength = 1;
              pending = '<';
              withTag = `${kept}<`;
              pendingShape = nextShape(keptShape, LT);
              i++;
            }
            break;
          }
          case TAG: {
            const code = delta.charCodeAt(i);
            if (tagLength < 6 ? (code | 0x20) !== THINK[tagLength - 1] : isWordCharacter(code)) {
              // Not an opening tag: its characters are text, and this one is read again as such.
              dropTag();
            } else if (tagLength === 6 && code === GT) {
              openBlock();
              i++;
            } else {
              pending += delta[i];
              withTag += delta[i];
              pendingShape = nextShape(pendingShape, code);
              if (tagLength < 6) tagLength++;
              else mode = ATTRIBUTES;
              i++;
            }
            break;
          }
          case ATTRIBUTES: {
            const gt = delta.indexOf('>', i);
            if (gt < 0) {
              pendingShape = advanceShape(pendingShape, delta, i, delta.length);
              withTag += delta.slice(i);
              i = delta.length;
            } else {
              openBlock();
              i = gt + 1;
            }
            break;
          }
          default:
            i = scanBlock(delta, i);
        }
      }
      text = settled ?? visible();
      return text;
    },
    get text() {
      return text;
    },
  };
}
