/**
 * Runs the hub: configuration from the environment (exit 2 naming the
 * variable when it is wrong), then one hub process (process/run-hub.ts), or
 * with PULSEWIRE_WORKERS above 1 a primary process that runs that many
 * workers sharing the port (workers/primary.ts; each worker then runs
 * run-hub.ts as a node of the hub's cluster).
 */
import cluster from 'node:cluster';
import { loadConfig, type Config } from './config/index.js';
import { fail } from './process/fail.js';
import { runHub } from './process/run-hub.js';
import { runPrimary } from './workers/primary.js';

function main(): Promise<void> | void {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    return fail(err, 2);
  }
  if (cluster.isPrimary && config.workers > 1) return runPrimary(config);
  return runHub(config);
}

void main();
