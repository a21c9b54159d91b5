import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // One real influxd serves the whole run; each test file uses its own database.
    globalSetup: ['test/support/global-setup.ts'],
    reporters: ['default', './test/support/summary-reporter.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Two cores: integration tests start real servers, keep parallelism modest.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
