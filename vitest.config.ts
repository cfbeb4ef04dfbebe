import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // The end-to-end files mostly wait (on Discord's per-channel rate limits, vote deadlines, model latency), not
    // compute: more files at once than cores keeps the suite short without starving any of them.
    maxWorkers: 5,
  },
});
