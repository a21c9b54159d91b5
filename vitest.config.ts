import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // One real influxd and one nats-server serve the whole run; each test file uses
    // its own database and its own bucket names.
    globalSetup: ['test/support/global-setup.ts', 'test/support/nats-global-setup.ts'],
    reporters: ['default', './test/support/summary-reporter.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // expect.poll waits for an event; its default ceiling (1 s) is a speed claim a busy machine breaks.
    // A poll that needs a tighter bound says so itself, and why.
    expect: { poll: { timeout: 15_000, interval: 50 } },
    // Two cores: integration tests start real servers, keep parallelism modest.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
