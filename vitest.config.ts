import { configDefaults, defineConfig } from 'vitest/config';

/**
 * Files that run several bot processes at once or thousands of turns: they run after all the others, two at a time,
 * so that neither they nor the files beside them wait for a core long enough to time out.
 */
const HEAVY = ['test/e2e/machines.test.ts', 'test/e2e/long-thread.*.test.ts'];

export default defineConfig({
  test: {
    // End-to-end tests wait for conditions (a reply, a ballot), each up to 30 s: on two busy cores a test of several
    // such steps needs room; an idle run is not slower for it.
    testTimeout: 60_000,
    // Hooks start bot processes and Redis servers: on a loaded machine that alone can take tens of seconds. Tests
    // that restart or kill processes set their own, longer timeout; their waits are for conditions, so a longer
    // limit costs nothing when the machine is idle.
    hookTimeout: 60_000,
    pool: 'forks',
    // The end-to-end files mostly wait (on Discord's per-channel rate limits, vote deadlines, model latency), not
    // compute: more files at once than cores keeps the suite short without starving any of them.
    maxWorkers: 5,
    projects: [
      {
        extends: true,
        test: {
          name: 'main',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, ...HEAVY],
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: { name: 'heavy', include: HEAVY, sequence: { groupOrder: 1 }, maxWorkers: 2 },
      },
    ],
  },
});
