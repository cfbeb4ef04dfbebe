import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    // Hooks start bot processes and Redis servers: on a loaded machine that alone can take tens of seconds. Tests
    // that restart or kill processes set their own, longer timeout; their waits are for conditions, so a longer
    // limit costs nothing when the machine is idle.
    hookTimeout: 60_000,
    pool: 'forks',
    // The end-to-end files mostly wait (on Discord's per-channel rate limits, vote deadlines, model latency), not
    // compute: more files at once than cores keeps the suite short without starving any of them.
    maxWorkers: 5,
  },
});
