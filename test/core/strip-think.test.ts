import { describe, expect, it } from 'vitest';
import { stripThink } from '../../src/core/strip-think.ts';

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
});
