import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Real processes, real SQLite and real gh: give slow shared machines room, never a speed assertion.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // expect.poll waits for a browser or a process, never measures speed: 1 s is too little on a loaded
    // machine. Every test must assert something.
    expect: { poll: { timeout: 30_000 }, requireAssertions: true },
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 2,
    // In-process engine logs would bury the report; spawned servers set their own level.
    env: { WB_BACKUP_LOG_LEVEL: 'warn' },
  },
});
