/** A fenced code block as opened in the source text. */
interface Fence {
  /** The run of backticks or tildes that opened it; a closing line repeats it. */
  readonly marker: string;
  /** The opening line without indentation, language included, used to reopen the block in the next chunk. */
  readonly opener: string;
}

interface Line {
  readonly start: number;
  /** Index of the line's `\n`, or the text's length for the last line. */
  readonly end: number;
  readonly blank: boolean;
  readonly kind: 'open' | 'close' | 'text';
  /** The fence still open after this line. */
  readonly fenceAfter: Fence | undefined;
  // What the line holds, found once, so that reading a piece of it costs no more than reading a few characters.
  /** Index of its first non-whitespace character (`end` for a blank line). */
  readonly firstContent: number;
  /** Index after its last non-whitespace character (`start` for a blank line). */
  readonly contentEnd: number;
  /** Where the run of backticks holding its last backtick starts (Infinity if it has none). */
  readonly lastBacktickRun: number;
  /** Where the run of backticks or tildes that ends its content starts (Infinity if its content ends otherwise). */
  readonly closingRun: number;
  /** Its last U+2028 or U+2029 before `contentEnd` (-1 if none): FENCE_LINE's `.` does not match them. */
  readonly lastSeparator: number;
}

interface Cut {
  /** Where this chunk's text ends. */
  readonly end: number;
  /** Where the next chunk's text starts. */
  readonly next: number;
  readonly score: number;
}

// Any indentation is accepted, unlike CommonMark's three spaces: models indent fences inside list items, and a fence
// missed here would be a fence left open in a chunk.
const FENCE_LINE = /^[ \t]*(`{3,}|~{3,})(.*)$/;
const WHITESPACE = /\s/;
const BACKTICK = 0x60;
const TILDE = 0x7e;

const PARAGRAPH = 3;
const LINE = 2;
const SPACE = 1;
const HARD = 0;
// Only for lines that cannot be cut safely yet do not fit (a fence line longer than the limit).
const LAST_RESORT = -1;

const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

/**
 * Splits a model's reply into Discord messages of at most `limit` characters (UTF-16 code units, which never
 * undercounts what Discord measures).
 *
 * Breaks at the last blank line that fits, else the last line break, else the last whitespace, else anywhere between
 * two graphemes; a break outside a code block is preferred over one of the same kind inside. A chunk that ends inside
 * a fenced code block (``` or ~~~, with or without a language) is closed at its end and reopened with the same fence
 * line at the start of the next chunk, both counted in the limit, so every chunk renders on its own. A fence still
 * open at the end of the text (a reply being streamed) is closed too. Chunks are never empty and have no leading or
 * trailing blank lines; a text with nothing but whitespace gives no chunks.
 */
export function splitMessage(text: string, limit = 2000): string[] {
  return createSplitter(limit).split(text);
}

/** Splits successive versions of one text; see {@link createSplitter}. */
export interface Splitter {
  /** The chunks {@link splitMessage} gives for `text`. */
  split(text: string): string[];
}

/** A chunk and what it was made from, kept to be reused by the next version of the text. */
interface Settled {
  readonly text: string;
  /** No chunk up to this one read the source at or past this index (Infinity: it read where the source ends). */
  readonly settledBy: number;
  /** Where the next chunk's search starts, and the fence it reopens. */
  readonly next: number;
  readonly carried: Fence | undefined;
}

/**
 * A splitter for a text that changes mostly at its end, like a reply being streamed and edited into place: each
 * version gets exactly the chunks of {@link splitMessage}, but the chunks and lines that the previous version settled
 * within the part both versions share are reused, not made again. A chunk is settled when everything its cut was
 * chosen from (the lines up to one past its room, and content beyond its room showing that it is not the last) lies
 * before the end of the text: more text cannot change it. So a version costs a comparison with the previous one (at
 * memory speed) and the splitting of its last chunk or two, where splitting it whole would cost its whole length.
 */
export function createSplitter(limit = 2000): Splitter {
  if (!Number.isInteger(limit) || limit < 1) {
    throw new RangeError(`limit must be a positive integer, got ${limit}`);
  }
  // Fences too long to repeat in every chunk would eat the room for content: those are passed through unrepaired.
  const closeLength = (fence: Fence | undefined): number =>
    fence !== undefined && fence.marker.length + 1 <= limit / 6 ? fence.marker.length + 1 : 0;
  const closing = (fence: Fence | undefined): string => (closeLength(fence) > 0 ? `\n${fence?.marker}` : '');
  const reopening = (fence: Fence | undefined): string => {
    if (closeLength(fence) === 0 || fence === undefined) return '';
    return fence.opener.length + 1 <= limit / 3 ? `${fence.opener}\n` : `${fence.marker}\n`;
  };

  let previous: { source: string; lines: Line[]; settled: Settled[] } | undefined;

  return {
    split(text) {
      const source = text.includes('\r') ? text.replace(/\r\n?/g, '\n') : text;
      const shared = previous === undefined ? 0 : sharedPrefixLength(previous.source, source);
      // Lines whose line break lies in the shared part are the same lines, with the same fence open after them.
      // (The line holding `shared` is the first whose line break is not shared.)
      const lines = previous?.lines ?? [];
      const keptLines = lines.length === 0 ? 0 : lineIndexAt(lines, shared);
      lines.length = keptLines;
      const lastKept = lines[keptLines - 1];
      parseLines(source, lines, lastKept === undefined ? 0 : lastKept.end + 1, lastKept?.fenceAfter);
      const settled = previous?.settled ?? [];
      let keptChunks = 0;
      while (keptChunks < settled.length && (settled[keptChunks]?.settledBy ?? shared) <= shared)
        keptChunks++;
      settled.length = keptChunks;

      const contentEnd = source.trimEnd().length;
      const lineAt = (position: number): number => lineIndexAt(lines, position);
      const fenceAtEnd = (end: number): Fence | undefined => lines[lineAt(end - 1)]?.fenceAfter;
      const lineEndRead = (index: number): number => {
        const line = lines[index];
        return line === undefined || line.end >= source.length ? Number.POSITIVE_INFINITY : line.end + 1;
      };

      const last = settled[keptChunks - 1];
      let position = last?.next ?? 0;
      // The fence the previous chunk closed, to be reopened.
      let carried = last?.carried;
      let settledBy = last?.settledBy ?? 0;
      for (;;) {
        position = skipBlank(source, position, limit / 4);
        if (position >= contentEnd) break;
        const lineIndex = lineAt(position);
        const line = lines[lineIndex];
        if (carried !== undefined && line?.kind === 'close' && position <= line.firstContent) {
          // The previous chunk already closed this block; reopening it only to close it again would show an empty one.
          settledBy = Math.max(settledBy, lineEndRead(lineIndex));
          position = line.end + 1;
          carried = undefined;
          continue;
        }
        const prefix = reopening(carried);
        const budget = limit - prefix.length;
        const endFence = fenceAtEnd(contentEnd);
        if (contentEnd - position + closeLength(endFence) <= budget) {
          settled.push({
            text: prefix + source.slice(position, contentEnd) + closing(endFence),
            settledBy: Number.POSITIVE_INFINITY,
            next: contentEnd,
            carried: undefined,
          });
          break;
        }
        const cut = chooseCut(source, lines, position, budget, closeLength);
        const fence = fenceAtEnd(cut.end);
        // The cut was chosen from the lines starting within the room and the line after them (whether it is blank or
        // opens a block); content past the room tells that this is not the last chunk.
        let beyond = position + budget;
        while (beyond < source.length && WHITESPACE.test(source[beyond] ?? '')) beyond++;
        settledBy = Math.max(
          settledBy,
          lineEndRead(lineAt(position + budget - 1) + 1),
          beyond < source.length ? beyond + 1 : Number.POSITIVE_INFINITY,
        );
        const chunk = prefix + source.slice(position, cut.end).trimEnd() + closing(fence);
        carried = closeLength(fence) > 0 ? fence : undefined;
        position = cut.next;
        settled.push({ text: chunk, settledBy, next: position, carried });
      }
      previous = { source, lines, settled };
      return settled.map((chunk) => chunk.text);
    },
  };
}

/** Parses the lines of `source` from `from` (a line's start, with `fenceBefore` open there) onto `lines`. */
function parseLines(source: string, lines: Line[], from: number, fenceBefore: Fence | undefined): void {
  let open = fenceBefore;
  let start = from;
  for (;;) {
    const newline = source.indexOf('\n', start);
    const end = newline === -1 ? source.length : newline;
    const content = source.slice(start, end);
    const match = FENCE_LINE.exec(content);
    const marker = match?.[1];
    const rest = match?.[2] ?? '';
    let kind: Line['kind'] = 'text';
    if (marker !== undefined) {
      if (open === undefined) {
        // CommonMark: a backtick fence's info string has no backticks, otherwise "```x```" is inline code.
        if (!(marker.startsWith('`') && rest.includes('`'))) {
          kind = 'open';
          open = { marker, opener: (marker + rest).trimEnd() };
        }
      } else if (marker[0] === open.marker[0] && marker.length >= open.marker.length && rest.trim() === '') {
        kind = 'close';
        open = undefined;
      }
    }
    const contentEnd = start + content.trimEnd().length;
    const lastBacktick = content.lastIndexOf('`');
    const last = source.charCodeAt(contentEnd - 1);
    // lastIndexOf from -1 would still look at index 0.
    const separator =
      contentEnd === start
        ? -1
        : Math.max(
            content.lastIndexOf('\u2028', contentEnd - start - 1),
            content.lastIndexOf('\u2029', contentEnd - start - 1),
          );
    lines.push({
      start,
      end,
      blank: contentEnd === start,
      kind,
      fenceAfter: open,
      firstContent: end - content.trimStart().length,
      contentEnd,
      lastBacktickRun:
        lastBacktick === -1 ? Number.POSITIVE_INFINITY : runStart(source, start + lastBacktick),
      closingRun:
        contentEnd > start && (last === BACKTICK || last === TILDE)
          ? runStart(source, contentEnd - 1)
          : Number.POSITIVE_INFINITY,
      lastSeparator: separator === -1 ? -1 : start + separator,
    });
    if (newline === -1) return;
    start = newline + 1;
  }
}

/**
 * How many leading characters two texts share. Comparing prefixes with `===` runs at memory speed, a loop over
 * characters far slower; versions of a streamed reply mostly differ near the end, so the prefixes tried grow from there.
 */
function sharedPrefixLength(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  let equal = 0;
  for (let back = 64; ; back *= 8) {
    const at = Math.max(0, length - back);
    if (a.slice(0, at) === b.slice(0, at)) {
      equal = at;
      break;
    }
  }
  while (equal < length && a.charCodeAt(equal) === b.charCodeAt(equal)) equal++;
  return equal;
}

/** Where the run of the character at `index` (repeated) starts. */
function runStart(source: string, index: number): number {
  const code = source.charCodeAt(index);
  let start = index;
  while (start > 0 && source.charCodeAt(start - 1) === code) start--;
  return start;
}

function lineIndexAt(lines: readonly Line[], position: number): number {
  let low = 0;
  let high = lines.length - 1;
  while (low < high) {
    const middle = (low + high + 1) >> 1;
    if ((lines[middle]?.start ?? 0) <= position) low = middle;
    else high = middle - 1;
  }
  return low;
}

/**
 * Moves past blank lines. Indentation of the first line is kept (it matters in code) unless the position is in the
 * middle of a line, where the whitespace is the gap at which the text was cut, or the indentation alone would not
 * leave room for content.
 */
function skipBlank(source: string, position: number, maxIndent: number): number {
  let content = position;
  // The last line break passed; searching back for it from `content` could cross a whole long line each chunk.
  let newline = -1;
  while (content < source.length && WHITESPACE.test(source[content] ?? '')) {
    if (source[content] === '\n') newline = content;
    content++;
  }
  const lineStart = newline >= position ? newline + 1 : position;
  const atLineStart = lineStart === 0 || source[lineStart - 1] === '\n';
  return atLineStart && content - lineStart <= maxIndent ? lineStart : content;
}

function chooseCut(
  source: string,
  lines: readonly Line[],
  position: number,
  budget: number,
  closeLength: (fence: Fence | undefined) => number,
): Cut {
  let best: Cut | undefined;
  const consider = (end: number, next: number, score: number): void => {
    if (best === undefined || score > best.score || (score === best.score && end > best.end)) {
      best = { end, next, score };
    }
  };
  for (let index = lineIndexAt(lines, position); index < lines.length; index++) {
    const line = lines[index];
    if (line === undefined) break;
    const start = Math.max(line.start, position);
    if (start - position >= budget) break;
    if (line.blank) continue;
    // Keeping the code block together in the next chunk reads better than cutting it where it starts.
    const outside = line.fenceAfter === undefined ? 1 : 0;
    const contentEnd = Math.max(start, line.contentEnd);
    if (contentEnd - position + closeLength(line.fenceAfter) <= budget) {
      // A chunk ending with an opening fence would show an empty block and repeat the fence in the next chunk.
      if (line.kind !== 'open') {
        const following = lines[index + 1];
        const paragraph =
          line.kind === 'close' || following === undefined || following.blank || following.kind === 'open';
        consider(contentEnd, line.end + 1, (paragraph ? PARAGRAPH : LINE) * 2 + outside);
      }
      continue;
    }
    // This line crosses the end of the room left: any break on a previous line beats one inside it.
    if (best !== undefined) break;
    const maxEnd = position + budget - closeLength(line.fenceAfter);
    let firstContent = start;
    while (firstContent < line.end && WHITESPACE.test(source[firstContent] ?? '')) firstContent++;
    if (line.kind === 'text') {
      // Each piece of a cut line becomes a line of its own, which must not open or close a block of its own.
      const pieces = createPieceReader(source, line, start, maxEnd);
      const safe = (end: number, next: number): boolean =>
        !pieces.headIsFence(end) && !pieces.restIsFence(next);
      for (let end = firstContent + 1; end <= maxEnd; end++) {
        if (!isSpace(source[end]) || isSpace(source[end - 1])) continue;
        let next = end;
        while (next < line.end && isSpace(source[next])) next++;
        if (safe(end, next)) consider(end, next, SPACE * 2 + outside);
      }
      if (best === undefined) {
        const end = hardCut(source, firstContent, line.end, maxEnd, (at) => safe(at, at));
        if (end !== undefined) consider(end, end, HARD * 2 + outside);
      }
    }
    if (best === undefined) {
      // maxEnd is past the position, so even a cut inside indentation leaves the earlier lines in the chunk.
      const end = hardCut(source, firstContent, line.end, maxEnd, () => true) ?? maxEnd;
      consider(end, end, LAST_RESORT);
    }
    break;
  }
  // Unreachable in practice: a non-blank line starts inside the room, and the loop always considers a cut on it.
  return best ?? { end: position + budget, next: position + budget, score: LAST_RESORT };
}

/** The last place at or before `maxEnd` that does not split a grapheme and that `safe` accepts. */
function hardCut(
  source: string,
  firstContent: number,
  lineEnd: number,
  maxEnd: number,
  safe: (end: number) => boolean,
): number | undefined {
  // Segmenting a little past maxEnd tells whether maxEnd itself falls inside a grapheme.
  const window = source.slice(firstContent, Math.min(lineEnd, maxEnd + 64));
  const boundaries = new Set<number>();
  for (const { index } of graphemes.segment(window)) boundaries.add(firstContent + index);
  const acceptable = (end: number, boundary: (end: number) => boolean): boolean => boundary(end) && safe(end);
  for (let end = maxEnd; end > firstContent; end--) {
    if (acceptable(end, (at) => boundaries.has(at))) return end;
  }
  // A grapheme longer than the room (a long run of combining marks): splitting it beats exceeding the limit.
  for (let end = maxEnd; end > firstContent; end--) {
    if (acceptable(end, (at) => !isLowSurrogate(source.charCodeAt(at)))) return end;
  }
  return undefined;
}

function isSpace(character: string | undefined): boolean {
  return character === ' ' || character === '\t';
}

/**
 * Reads the two pieces of a cut text line as lines of their own, where `open` is the block open around the line:
 * whether `source[start, end)` or `source[next, line.end)` would open or close a block (FENCE_LINE on the piece
 * without its trailing whitespace). Slicing and matching each piece would cost its length at every place a long line
 * could be cut; these answers cost constant time (or, for the rest of the line after a run of indentation, the run
 * once), from facts about the line and about what follows the marker that `start` begins with, up to `maxEnd`.
 */
function createPieceReader(
  source: string,
  line: Line,
  start: number,
  maxEnd: number,
): { headIsFence(end: number): boolean; restIsFence(next: number): boolean } {
  const open = line.fenceAfter;
  const openCode = open?.marker.charCodeAt(0);
  const isMarker = (code: number) => code === BACKTICK || code === TILDE;

  // Indentation after a position: the last run read is kept, as hard cuts try positions one by one backwards.
  let indentFrom = Number.POSITIVE_INFINITY;
  let indentTo = Number.POSITIVE_INFINITY;
  const skipIndent = (at: number): number => {
    if (at >= indentFrom && at <= indentTo) return indentTo;
    if (at === indentFrom - 1 && isSpace(source[at])) {
      indentFrom = at;
      return indentTo;
    }
    let end = at;
    while (end < line.end && isSpace(source[end])) end++;
    indentFrom = at;
    indentTo = end;
    return end;
  };

  // The piece before a cut always starts at `start`; no cut lies past maxEnd.
  const marker = skipIndent(start);
  const code = marker < line.end ? source.charCodeAt(marker) : Number.NaN;
  let markerEnd = marker;
  if (isMarker(code)) while (markerEnd <= maxEnd && source.charCodeAt(markerEnd) === code) markerEnd++;
  // After the marker: its first backtick, its first non-whitespace, and the first non-whitespace after a separator.
  let backtick = Number.POSITIVE_INFINITY;
  let content = Number.POSITIVE_INFINITY;
  let afterSeparator = Number.POSITIVE_INFINITY;
  let separator = false;
  for (let i = markerEnd; isMarker(code) && i < Math.min(line.end, maxEnd); i++) {
    const character = source[i] ?? '';
    if (character === '`' && backtick === Number.POSITIVE_INFINITY) backtick = i;
    if (!WHITESPACE.test(character)) {
      if (content === Number.POSITIVE_INFINITY) content = i;
      if (separator) {
        afterSeparator = i;
        break;
      }
    } else if (character === '\u2028' || character === '\u2029') separator = true;
  }

  return {
    headIsFence(end) {
      if (!isMarker(code)) return false;
      const length = Math.min(markerEnd, end) - marker;
      if (length < 3) return false;
      if (end > markerEnd) {
        // A separator followed by content before the end makes FENCE_LINE fail.
        if (afterSeparator < end) return false;
        if (open === undefined) return !(code === BACKTICK && backtick < end);
        return code === openCode && length >= open.marker.length && content >= end;
      }
      return open === undefined || (code === openCode && length >= open.marker.length);
    },
    restIsFence(next) {
      const at = skipIndent(next);
      const first = source.charCodeAt(at);
      if (at + 2 >= line.end || !isMarker(first)) return false;
      if (source.charCodeAt(at + 1) !== first || source.charCodeAt(at + 2) !== first) return false;
      // Separators are never part of the marker: one at or after it is in the rest.
      if (line.lastSeparator >= at) return false;
      // The rest holds a backtick unless the marker is the line's last run of backticks.
      if (open === undefined) return first === TILDE || at >= line.lastBacktickRun;
      // The rest is blank if the marker runs to the end of the line's content.
      return (
        first === openCode &&
        at >= line.closingRun &&
        source.charCodeAt(line.contentEnd - 1) === first &&
        line.contentEnd - at >= open.marker.length
      );
    },
  };
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}
