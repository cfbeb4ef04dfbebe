import { describe, expect, it } from 'vitest';
import { createThinkFilter, stripThink } from '../../src/core/strip-think.ts';

// The rules as they were first written, as regular expressions: the reference both implementations are checked
// against (they cost time in proportion to the whole text on every delta, and backtrack on unclosed tags).
const LEADING_THINK = /^\s*(?:<think\b[^>]*>[\s\S]*?(?:<\/think\s*>|$)\s*)+/i;
const CLOSED_THINK = /<think\b[^>]*>[\s\S]*?<\/think\s*>/gi;
const UNCLOSED_THINK = /<think\b[^>]*>[\s\S]*$/i;
const PARTIAL_OPENING_TAG = /^\s*<(?:t(?:h(?:i(?:n(?:k(?:\s[^>]*)?)?)?)?)?)?$/i;

function stripThinkByRegex(text: string): string {
  const stripped = text.replace(LEADING_THINK, '').replace(CLOSED_THINK, '').replace(UNCLOSED_THINK, '');
  return PARTIAL_OPENING_TAG.test(stripped) ? '' : stripped;
}

/** A small deterministic generator (mulberry32), so that a failure names a text that reproduces it. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Pieces of tags and near-tags, in any case, and the whitespace around them.
const PIECES = [
  '<think>',
  '</think>',
  '<THINK a',
  '</Think',
  ' >',
  '<th',
  'ink',
  'nk',
  '<thi',
  '<',
  '>',
  '/',
  'k',
  'x',
  '-',
  '_',
  ' ',
  '\n',
  '<thinking>',
  '\u00a0',
  '\u212a',
  'word ',
];
const CLOSED_BLOCKS = ['<think>r</think>', '<THINK\n>r</think >', '<think a="1">r</tHink\n>'];

/** Random pieces, then closed blocks put anywhere, even inside a tag (a tag spelled across blocks). */
function randomText(next: () => number, pieces: number): string {
  const pick = (list: readonly string[]) => list[Math.floor(next() * list.length)]!;
  let text = '';
  const count = Math.floor(next() * pieces);
  for (let i = 0; i < count; i++) text += pick(PIECES);
  const blocks = Math.floor(next() * 3);
  for (let i = 0; i < blocks; i++) {
    const at = Math.floor(next() * (text.length + 1));
    text = text.slice(0, at) + pick(CLOSED_BLOCKS) + text.slice(at);
  }
  return text;
}

describe('stripThink', () => {
  it('leaves a reply without reasoning untouched', () => {
    expect(stripThink('Hello **world**\n\n  indented')).toBe('Hello **world**\n\n  indented');
    expect(stripThink('')).toBe('');
  });

  it('removes a leading reasoning block and the whitespace it leaves at the start', () => {
    expect(stripThink('<think>\nLet me see.\n</think>\n\nThe answer is 4.')).toBe('The answer is 4.');
  });

  it('matches the tags in any case', () => {
    expect(stripThink('<THINK>hmm</Think>Answer')).toBe('Answer');
  });

  it('removes several blocks, including ones in the middle of the reply', () => {
    expect(stripThink('<think>a</think>First.\n<think>\nb\n</think>\nSecond.<think>c</think>')).toBe(
      'First.\n\nSecond.',
    );
  });

  it('removes consecutive leading blocks with whitespace between them', () => {
    expect(stripThink('\n<think>a</think>\n\n<think>b</think>\n  Answer')).toBe('Answer');
  });

  it('hides everything from an unclosed block to the end while the reply streams', () => {
    expect(stripThink('<think>I am still reasoning about')).toBe('');
    expect(stripThink('Partial answer\n<think>second thoughts')).toBe('Partial answer\n');
    expect(stripThink('<think>done</think>Answer <think>more')).toBe('Answer ');
  });

  it('shows the answer once the closing tag arrives', () => {
    const stream = '<think>plan</think>\n\nHello there';
    const seen = Array.from({ length: stream.length }, (_, i) => stripThink(stream.slice(0, i + 1)));
    expect(seen.at(-1)).toBe('Hello there');
    // The reasoning never leaks, even while its closing tag is arriving in pieces.
    for (const shown of seen) expect(shown).not.toMatch(/plan|<\/?t/);
  });

  it('hides an opening tag that has only partly arrived at the start', () => {
    for (const partial of ['<', '<t', '<th', '<thi', '<thin', '<think', '  <THI', '<think type="x"']) {
      expect(stripThink(partial)).toBe('');
    }
  });

  it('keeps prose that merely contains angle brackets or similar words', () => {
    expect(stripThink('a < b and <thinking> is not a tag')).toBe('a < b and <thinking> is not a tag');
    expect(stripThink('x <')).toBe('x <');
  });

  it('accepts attributes on the opening tag and spaces before the closing bracket', () => {
    expect(stripThink('<think effort="high">x</think >Done')).toBe('Done');
  });

  it('removes a block holding something that looks like a tag', () => {
    expect(stripThink('<think>maybe <b>bold</b>?</think>Yes')).toBe('Yes');
  });

  it('gives what the original regular expressions give, on random text made of tags and near-tags', () => {
    const next = random(12);
    for (let n = 0; n < 20_000; n++) {
      const text = randomText(next, n % 2 === 0 ? 12 : 40);
      expect(stripThink(text), JSON.stringify(text)).toBe(stripThinkByRegex(text));
    }
  });

  it('keeps whole a reply full of unclosed tags, and hides everything after the first complete one', () => {
    expect(stripThink('a <think b <think c')).toBe('a <think b <think c');
    expect(stripThink(`a ${'<think>b '.repeat(5000)}`)).toBe('a ');
  });
});

describe('createThinkFilter', () => {
  it('returns after every delta what stripThink returns for everything pushed so far, however it is cut', () => {
    const next = random(7);
    for (let n = 0; n < 5_000; n++) {
      const text = randomText(next, n % 2 === 0 ? 12 : 40);
      const filter = createThinkFilter();
      let at = 0;
      while (at < text.length) {
        const end = Math.min(text.length, at + 1 + Math.floor(next() * 6));
        const shown = filter.push(text.slice(at, end));
        at = end;
        expect(shown, JSON.stringify(text.slice(0, at))).toBe(stripThinkByRegex(text.slice(0, at)));
        expect(filter.text).toBe(shown);
      }
    }
  });

  it('hides a reasoning block arriving one character at a time, and shows the answer once it closes', () => {
    const stream = '  <Think effort="low">\nplan a < b </think >\n\nThe answer <b>is</b> 4.<think>more';
    const filter = createThinkFilter();
    const seen = [...stream].map((character) => filter.push(character));
    const answer = stream.indexOf('The');
    // Whitespace alone is kept, as the rules say, until the tag begins; then nothing shows until the answer.
    expect(seen.slice(0, 2)).toEqual([' ', '  ']);
    expect(seen.slice(2, answer)).toEqual(Array(answer - 2).fill(''));
    expect(seen).toContain('The answer <b>is</b> 4.<thin');
    expect(filter.text).toBe('The answer <b>is</b> 4.');
  });

  it('reads a tag spelled across removed blocks as the regular expressions do', () => {
    const filter = createThinkFilter();
    expect(filter.push('Yes <th')).toBe('Yes <th');
    expect(filter.push('<think>x</think>')).toBe('Yes <th');
    expect(filter.push('ink')).toBe('Yes <think');
    expect(filter.push(' a>b')).toBe('Yes ');
    expect(filter.push(' and more </think> text')).toBe('Yes ');
    expect(stripThink('Yes <th<think>x</think>ink a>b and more </think> text')).toBe('Yes ');
    expect(stripThink('Yes <th<think>x</think>ink<think>more')).toBe('Yes ');
    // What is left before the cut is a partial tag, hidden like any other.
    expect(stripThink('<thi<think>x</think><think a>b')).toBe('');
  });

  it('starts empty and accepts empty deltas', () => {
    const filter = createThinkFilter();
    expect(filter.text).toBe('');
    expect(filter.push('')).toBe('');
    expect(filter.push('Hi')).toBe('Hi');
    expect(filter.push('')).toBe('Hi');
  });
});
