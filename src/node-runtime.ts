/**
 * How every bot process is started: `npm start`, `npm run start:sharded` and its shards, and the tests' and
 * benchmarks' bots. package.json's start scripts spell out the same flags and cache directory (test/node-runtime.test.ts
 * keeps them equal).
 *
 * - A young generation of 2 MB semi-spaces instead of V8's 16 MB: the bot allocates many short-lived objects per
 *   gateway event and stream delta, and with the default V8 lets the young generation and the heap around it grow to
 *   about 100 MB beyond what is live (bench part 8). Scavenges become more frequent and stay cheap.
 * - Node's compile cache: Node strips the types of every `.ts` file with a WebAssembly compiler whose memory (about
 *   25 MB) is kept for the life of the process; with the stripped code cached on disk, starts after the first one
 *   never load it, and they start faster.
 */
import { resolve } from 'node:path';

export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2'];

/** Inside node_modules: made by `npm install`, ignored by git, and gone with a fresh install. */
export const COMPILE_CACHE_DIR = resolve(import.meta.dirname, '../node_modules/.cache/threadfork-compile');

/** The environment a bot process needs on top of its configuration. */
export function runtimeEnv(): Record<string, string> {
  return { NODE_COMPILE_CACHE: COMPILE_CACHE_DIR };
}
