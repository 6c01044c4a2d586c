import { defineConfig } from 'vitest/config';

// Two projects. `unit`: pure tests (no build, no child process, no server), run with
// `npm run test:unit` in seconds. `e2e`: the built CLI, real registries, real processes and
// sockets (`npm run test:e2e`, after `npm run build`). `vitest run` runs both.
export default defineConfig({
  test: {
    // e2e suites start real registries and move real bytes: give them room, and
    // keep two workers so a 2-core machine is not oversubscribed.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          // Refuses child processes and servers, so the project stays pure.
          setupFiles: ['test/helpers/pure-unit.ts'],
          testTimeout: 60_000,
        },
      },
      {
        extends: true,
        test: { name: 'e2e', include: ['test/e2e/**/*.test.ts'] },
      },
    ],
  },
});
