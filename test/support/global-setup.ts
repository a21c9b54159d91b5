/**
 * One real influxd for the whole test run (vitest globalSetup, main
 * process). Test files get its base URL through inject('influxUrl') and each
 * creates its own database, so files can run in parallel against it.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { startManagedInfluxd } from '../../src/storage/managed-influxd.js';
import { ensureDashboardBuilt, ensureHubBuilt } from './build.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** http://127.0.0.1:PORT of the suite's influxd, without a database. */
    influxUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // Built once, before any file runs: the page the hub serves at / (test/dashboard/ opens it in a
  // browser) and the hub's dist/ (test/scripts/ runs `npm run demo` from it). No test builds.
  await ensureDashboardBuilt();
  ensureHubBuilt();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'pulsewire-test-influxd-'));
  const influxd = await startManagedInfluxd({
    dataDir,
    logger: {
      info: () => {},
      warn: (obj, msg) => console.warn('[influxd]', msg, obj),
      error: (obj, msg) => console.error('[influxd]', msg, obj),
    },
  });
  project.provide('influxUrl', influxd.url);
  return async () => {
    await influxd.stop();
    await rm(dataDir, { recursive: true, force: true });
  };
}
