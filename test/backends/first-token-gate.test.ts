import { describe, expect, it } from 'vitest';
import { startAfterFirstToken } from '../../src/backends/first-token-gate.ts';
import type { Variant } from '../../src/core/ports.ts';

/** A variant named by its model; its deltas go to `seen`. */
const variant = (name: string, seen: string[] = []): Variant => ({
  options: { model: name, instructions: undefined, temperature: undefined },
  signal: new AbortController().signal,
  onDelta(delta) {
    seen.push(delta);
  },
});

/** Generations that stream `tokens[name]` deltas, one per macrotask, then end (or fail), logging their starts. */
function generations(log: string[], tokens: Record<string, number>, failing: string[] = []) {
  return async (v: Variant) => {
    const name = v.options.model;
    log.push(`${name} start`);
    for (let i = 0; i < (tokens[name] ?? 0); i++) {
      await new Promise((resolve) => setImmediate(resolve));
      log.push(`${name} token`);
      v.onDelta(`${name}${i}`);
    }
    if (failing.includes(name)) throw new Error(`${name} failed`);
    return name;
  };
}

describe('startAfterFirstToken', () => {
  it('starts the others once the first has streamed its first token, and passes every delta on', async () => {
    const log: string[] = [];
    const seen: string[] = [];
    const results = await startAfterFirstToken(
      [variant('a', seen), variant('b'), variant('c')],
      generations(log, { a: 3, b: 1, c: 1 }),
    );
    expect(results.map((r) => r.status === 'fulfilled' && r.value)).toEqual(['a', 'b', 'c']);
    expect(log.slice(0, 4)).toEqual(['a start', 'a token', 'b start', 'c start']);
    expect(seen).toEqual(['a0', 'a1', 'a2']);
  });

  it('starts the others when the first fails before any token, and reports each outcome', async () => {
    const log: string[] = [];
    const results = await startAfterFirstToken(
      [variant('a'), variant('b')],
      generations(log, { a: 0, b: 1 }, ['a']),
    );
    expect(results[0]).toMatchObject({ status: 'rejected' });
    expect(results[1]).toEqual({ status: 'fulfilled', value: 'b' });
    expect(log).toEqual(['a start', 'b start', 'b token']);
  });
});
