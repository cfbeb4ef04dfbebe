import { readFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { COMPILE_CACHE_DIR, NODE_FLAGS } from '../src/node-runtime.ts';

const root = resolve(import.meta.dirname, '..');
const scripts = (
  JSON.parse(readFileSync(resolve(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
).scripts;

describe('how bot processes are started', () => {
  // The tests and benchmarks start the bot with NODE_FLAGS; `npm start` must be the process they measured.
  it.each(['start', 'start:sharded'])(
    'npm run %s uses the same V8 flags and compile cache as the tests',
    (name) => {
      const words = (scripts[name] ?? '').split(/\s+/);
      expect(words).toContain(`NODE_COMPILE_CACHE=${relative(root, COMPILE_CACHE_DIR)}`);
      const node = words.indexOf('node');
      expect(node).toBeGreaterThan(-1);
      expect(words.slice(node + 1, node + 1 + NODE_FLAGS.length)).toEqual(NODE_FLAGS);
    },
  );
});
