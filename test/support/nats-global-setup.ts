/**
 * One real nats-server with JetStream for the whole test run (vitest
 * globalSetup, main process). Test files get its URL through
 * inject('natsUrl') and name their buckets with their own namespace
 * (test/support/nats.ts), so files can run in parallel against it. A file
 * that restarts the server starts its own instead (startOwnNatsServer).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { startManagedNatsServer } from '../../src/cluster/managed-nats-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** nats://127.0.0.1:PORT of the suite's nats-server (JetStream on). */
    natsUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'pulsewire-test-nats-'));
  const server = await startManagedNatsServer({
    dataDir,
    logger: {
      info: () => {},
      warn: (obj, msg) => console.warn('[nats-server]', msg, obj),
      error: (obj, msg) => console.error('[nats-server]', msg, obj),
    },
  });
  project.provide('natsUrl', server.url);
  return async () => {
    await server.stop();
    await rm(dataDir, { recursive: true, force: true });
  };
}
