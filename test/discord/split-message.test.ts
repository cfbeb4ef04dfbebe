import { describe, expect, it } from 'vitest';
import { createSplitter, splitMessage } from '../../src/discord/split-message.ts';

/** Deterministic PRNG (mulberry32), so a failing generated case can be reproduced from its seed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FENCE = /^[ \t]*(`{3,}|~{3,})(.*)$/;

/** An independent reading of the fences of one message: the fence still open at its end, if any. */
function openFenceAtEnd(message: string): string | undefined {
  let open: string | undefined;
  for (const line of message.split('\n')) {
    const match = FENCE.exec(line);
    const marker = match?.[1];
    if (marker === undefined) continue;
    const info = match?.[2] ?? '';
    if (open === undefined) {
      if (!(marker.startsWith('`') && info.includes('`'))) open = marker;
    } else if (marker[0] === open[0] && marker.length >= open.length && info.trim() === '') {
      open = undefined;
    }
  }
  return open;
}

/** The text with fence lines (added ones included) and all whitespace removed. */
function visibleContent(text: string): string {
  return text
    .replace(/\r\n?/g, '\n')
    .split('\n')
    .filter((line) => {
      const match = FENCE.exec(line);
      return match === null || (match[1]?.startsWith('`') === true && match[2]?.includes('`') === true);
    })
    .join('')
    .replace(/\s+/g, '');
}

function expectValidChunks(text: string, limit: number): string[] {
  const chunks = splitMessage(text, limit);
  for (const chunk of chunks) {
    expect(chunk.length).toBeLessThanOrEqual(limit);
    expect(chunk.trim()).not.toBe('');
    expect(chunk).toBe(chunk.trimEnd());
    expect(chunk).not.toMatch(/^[ \t]*\n/);
    expect(openFenceAtEnd(chunk), chunk).toBeUndefined();
  }
  expect(visibleContent(chunks.join('\n'))).toBe(visibleContent(text));
  return chunks;
}

const WORDS = [
  'the',
  'model',
  'fork',
  'thread',
  'vote',
  'reply',
  'branch',
  'quickly',
  'ok',
  'Discord',
  '`x`',
];
const LANGUAGES = ['', 'ts', 'python', 'c++', 'json'];

function generate(next: () => number): string {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T;
  const count = (max: number): number => 1 + Math.floor(next() * max);
  const sentence = (): string => Array.from({ length: count(25) }, () => pick(WORDS)).join(' ');
  const paragraph = (): string => Array.from({ length: count(8) }, sentence).join('. ');
  const codeLine = (): string =>
    pick([
      () => `${'  '.repeat(Math.floor(next() * 4))}const ${pick(WORDS)} = ${Math.floor(next() * 1000)};`,
      () => "const fence = '```';",
      () => 'inline ```not a fence``` here',
      () => '~~~ tilde text',
      () => '',
      () => 'x'.repeat(count(300)),
    ])();
  const code = (): string => {
    const marker = pick(['```', '```', '~~~', '````']);
    const body = Array.from({ length: count(60) }, codeLine);
    if (marker === '````') body.splice(1, 0, '```js', 'nested();', '```');
    return [`${marker}${pick(LANGUAGES)}`, ...body, marker].join('\n');
  };
  const blocks = Array.from({ length: count(12) }, () =>
    pick([
      paragraph,
      paragraph,
      code,
      () => Array.from({ length: count(10) }, () => `- ${sentence()}`).join('\n'),
      () => 'y'.repeat(count(5000)),
      () => `  indented ${sentence()}`,
      () => `Emoji 👨‍👩‍👧‍👦 and é ${'🙂'.repeat(count(700))}`,
    ])(),
  );
  let text = blocks.join(pick(['\n\n', '\n', '\n\n\n']));
  // Replies being streamed end inside a block now and then.
  if (next() < 0.15) text += `\n\`\`\`${pick(LANGUAGES)}\n${sentence()}`;
  return text;
}

describe('splitMessage', () => {
  it('returns no chunks for empty or blank text', () => {
    expect(splitMessage('')).toEqual([]);
    expect(splitMessage(' \n\n\t\n')).toEqual([]);
  });

  it('returns a short reply as one chunk without surrounding blank lines', () => {
    expect(splitMessage('\n\nHello\n\nworld\n\n')).toEqual(['Hello\n\nworld']);
  });

  it('keeps a chunk of exactly the limit whole', () => {
    const text = 'a'.repeat(2000);
    expect(splitMessage(text)).toEqual([text]);
  });

  it('breaks at the last blank line that fits', () => {
    const text = ['a'.repeat(10), 'b'.repeat(10), 'c'.repeat(10)].join('\n\n');
    expect(splitMessage(text, 25)).toEqual([`${'a'.repeat(10)}\n\n${'b'.repeat(10)}`, 'c'.repeat(10)]);
  });

  it('prefers a blank line over a later line break', () => {
    const text = `${'a'.repeat(5)}\n\n${'b'.repeat(5)}\n${'c'.repeat(5)}\n${'d'.repeat(20)}`;
    expect(splitMessage(text, 20)).toEqual(['aaaaa', 'bbbbb\nccccc', 'd'.repeat(20)]);
  });

  it('falls back to a line break, then to whitespace, then to a hard cut', () => {
    expect(splitMessage('one two\nthree four\nfive', 20)).toEqual(['one two\nthree four', 'five']);
    expect(splitMessage('one two three four five six', 10)).toEqual(['one two', 'three four', 'five six']);
    expect(splitMessage('abcdefghijkl', 5)).toEqual(['abcde', 'fghij', 'kl']);
  });

  it('hard-splits a single 5000-character line into full chunks', () => {
    const text = 'z'.repeat(5000);
    expect(splitMessage(text).map((chunk) => chunk.length)).toEqual([2000, 2000, 1000]);
  });

  it('never cuts an emoji or a grapheme in two', () => {
    const family = '👨‍👩‍👧‍👦';
    const chunks = splitMessage(family.repeat(10), 30);
    for (const chunk of chunks) expect(chunk.replaceAll(family, '')).toBe('');
    expect(chunks.join('')).toBe(family.repeat(10));
    for (const chunk of splitMessage('🙂'.repeat(10), 5)) expect(chunk).toBe('🙂🙂');
  });

  it('closes a code block at the end of a chunk and reopens it with its language in the next', () => {
    const code = Array.from({ length: 6 }, (_, i) => `line${i}`).join('\n');
    const chunks = splitMessage(`\`\`\`ts\n${code}\n\`\`\``, 30);
    expect(chunks).toEqual(['```ts\nline0\nline1\nline2\n```', '```ts\nline3\nline4\nline5\n```']);
  });

  it('counts the added fence lines within the limit', () => {
    const text = `\`\`\`python\n${'word '.repeat(200)}\n\`\`\``;
    for (const chunk of expectValidChunks(text, 50)) {
      expect(chunk.startsWith('```python\n')).toBe(true);
      expect(chunk.endsWith('\n```')).toBe(true);
    }
  });

  it('reopens tilde fences and longer backtick fences with the same marker', () => {
    const tilde = splitMessage(`~~~sh\n${'echo 1\n'.repeat(10)}~~~`, 40);
    expect(tilde.length).toBeGreaterThan(1);
    for (const chunk of tilde) expect(chunk).toMatch(/^~~~sh\n[\s\S]*\n~~~$/);
    const nested = splitMessage(`\`\`\`\`md\n\`\`\`js\n${'call();\n'.repeat(10)}\`\`\`\n\`\`\`\``, 40);
    for (const chunk of nested) expect(chunk).toMatch(/^````md\n[\s\S]*\n````$/);
  });

  it('starts a chunk before a code block rather than cutting the block where it begins', () => {
    const code = `\`\`\`js\n${'f();\n'.repeat(5)}\`\`\``;
    const text = `${'Intro words here. '.repeat(3).trim()}\n\n${code}`;
    expect(splitMessage(text, 60)).toEqual(['Intro words here. Intro words here. Intro words here.', code]);
  });

  it('does not end a chunk with an empty code block', () => {
    const text = `Intro\n\`\`\`ts\n${'x'.repeat(30)}\n\`\`\``;
    const chunks = expectValidChunks(text, 30);
    expect(chunks[0]).toBe('Intro');
    for (const chunk of chunks) expect(chunk).not.toMatch(/```ts\n```/);
  });

  it('does not reopen a block only to close it again', () => {
    const text = `\`\`\`\n${'a'.repeat(20)}\n\`\`\`\nAfter the block.`;
    expect(splitMessage(text, 30)).toEqual([`\`\`\`\n${'a'.repeat(20)}\n\`\`\``, 'After the block.']);
  });

  it('closes a fence still open at the end of a streaming reply', () => {
    expect(splitMessage('Look:\n```ts\nconst a = 1;')).toEqual(['Look:\n```ts\nconst a = 1;\n```']);
    expect(expectValidChunks(`\`\`\`ts\n${'let x = 1;\n'.repeat(30)}`, 100).length).toBeGreaterThan(1);
  });

  it('reads triple backticks inside a line as inline code, not as a fence', () => {
    expect(splitMessage('Use ```x``` inline\nthen more')).toEqual(['Use ```x``` inline\nthen more']);
    expect(splitMessage('```js```\nplain')).toEqual(['```js```\nplain']);
  });

  it('never turns triple backticks in prose into a fence by cutting before them', () => {
    const text = Array.from({ length: 40 }, (_, i) => (i % 3 === 0 ? '```' : `w${i}`)).join(' ');
    for (const limit of [7, 8, 9, 10, 11, 13, 17]) expectValidChunks(text, limit);
  });

  it('reads each piece of a cut line as a line of its own: fence, inline code, or neither', () => {
    // Outputs of the implementation that sliced each piece and matched it, pinned: the piece reader must agree.
    const cases: [string, number, string[]][] = [
      ['```ts `x`', 8, ['```ts `x', '`']],
      ['``````ts`', 8, ['``', '````ts`']],
      ['```ts\n```ts', 10, ['```ts\n```t', 's']],
      ['~~~x\n```` ', 8, ['~~~x\n```', '`']],
      ['```~~~\n````` `', 10, ['```~~~\n``', '``` `']],
      ['`````\n```` ```', 13, ['`````\n````', '```']],
      // FENCE_LINE's `.` stops at a line or paragraph separator: a piece holding one inside is no fence.
      ['~~~ \u2028\u2028```', 8, ['~~~ \u2028\u2028``', '`']],
      ['` ~~~\u2028```', 8, ['`', '~~~\u2028```']],
    ];
    for (const [text, limit, chunks] of cases)
      expect(splitMessage(text, limit), JSON.stringify(text)).toEqual(chunks);
  });

  it('splits a long line of fence-like words, each a possible cut, into valid chunks', () => {
    // Before each piece was read in constant time, this line took seconds (each piece sliced to the end of the line).
    const text = '``` '.repeat(20_000);
    const chunks = splitMessage(text);
    expect(chunks.every((chunk) => chunk.length <= 2000)).toBe(true);
    expect(chunks.join(' ').replace(/\s+/g, '')).toBe(text.replace(/\s+/g, ''));
  });

  it('keeps the indentation of a code line that starts a chunk', () => {
    const text = `\`\`\`py\ndef f():\n    return 1\n    return 2\n\`\`\``;
    const chunks = splitMessage(text, 30);
    expect(chunks.some((chunk) => chunk.startsWith('```py\n    return'))).toBe(true);
  });

  it('treats CRLF line endings like LF', () => {
    expect(splitMessage('a\r\n\r\nb\r\nc', 4)).toEqual(['a', 'b\nc']);
  });

  it('rejects a limit that is not a positive integer', () => {
    expect(() => splitMessage('x', 0)).toThrow(RangeError);
    expect(() => splitMessage('x', 1.5)).toThrow(RangeError);
  });

  it('works down to a limit of one character', () => {
    expect(splitMessage('ab c', 1)).toEqual(['a', 'b', 'c']);
    // No room for fences at all: they are cut like any text, but the limit still holds.
    expect(splitMessage('```\nab\n```', 1)).toEqual(['`', '`', '`', 'a', 'b', '`', '`', '`']);
  });

  describe('on generated replies', () => {
    const cases = Array.from({ length: 300 }, (_, seed) => {
      const next = random(seed + 1);
      return { seed, text: generate(next), limit: [2000, 2000, 500, 120, 60][seed % 5] ?? 2000 };
    });

    it('keeps every chunk within the limit, with balanced fences, preserving the text in order', () => {
      for (const { seed, text, limit } of cases) {
        try {
          expectValidChunks(text, limit);
        } catch (error) {
          throw new Error(`seed ${seed}, limit ${limit}`, { cause: error });
        }
      }
    });

    it('splits long prose and long code blocks at the limit', () => {
      const prose = Array.from({ length: 200 }, (_, i) => `Sentence number ${i} goes on a while.`).join(' ');
      expect(expectValidChunks(prose, 2000).length).toBe(Math.ceil(prose.length / 2000));
      const code = `\`\`\`ts\n${Array.from({ length: 400 }, (_, i) => `const v${i} = ${i};`).join('\n')}\n\`\`\``;
      const chunks = expectValidChunks(code, 2000);
      for (const chunk of chunks.slice(0, -1)) expect(chunk.length).toBeGreaterThan(1900);
    });
  });
});

describe('createSplitter', () => {
  // Pieces that make fences, inline code, separators and whitespace meet at chunk boundaries.
  const PIECES = [
    '```',
    '```ts',
    '~~~',
    '````',
    '`',
    '~',
    ' ',
    '  ',
    '\t',
    '\n',
    '\n\n',
    'word',
    'x',
    '\u2028',
    '\u00a0',
    '👍🏽',
    '\r\n',
    '`x`',
    '  ```',
    'y'.repeat(30),
    'some longer words here ',
  ];

  /** Versions of a text as a stream shows them: growing, now and then losing part of its end, or changed inside. */
  function* versions(next: () => number, grow: () => string, count: number): Generator<string> {
    let text = '';
    for (let i = 0; i < count; i++) {
      const roll = next();
      if (roll < 0.8) text += grow();
      else if (roll < 0.9) text = text.slice(0, Math.floor(next() * (text.length + 1)));
      else {
        const at = Math.floor(next() * (text.length + 1));
        text = text.slice(0, at) + grow() + text.slice(at + Math.floor(next() * 4));
      }
      yield next() < 0.5 ? `${text} ▌` : text;
    }
  }

  it('gives every version of a changing text the chunks splitMessage gives it', () => {
    for (let seed = 1; seed <= 150; seed++) {
      const next = random(seed);
      const limit = [5, 8, 13, 24, 30, 40, 60, 100][seed % 8] ?? 40;
      const splitter = createSplitter(limit);
      const grow = () => PIECES[Math.floor(next() * PIECES.length)] ?? '';
      for (const version of versions(next, grow, 60)) {
        expect(splitter.split(version), `seed ${seed}: ${JSON.stringify(version)}`).toEqual(
          splitMessage(version, limit),
        );
      }
    }
  });

  it('does the same for generated replies streamed in pieces', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const next = random(seed);
      const reply = generate(next);
      const limit = [2000, 500, 120, 60][seed % 4] ?? 2000;
      const splitter = createSplitter(limit);
      let at = 0;
      const grow = () => {
        const piece = reply.slice(at, at + 1 + Math.floor(next() * 300));
        at += piece.length;
        return piece;
      };
      for (const version of versions(next, grow, 60)) {
        expect(splitter.split(version), `seed ${seed}`).toEqual(splitMessage(version, limit));
      }
    }
  });

  it('rejects a limit that is not a positive integer', () => {
    expect(() => createSplitter(0)).toThrow(RangeError);
  });
});
