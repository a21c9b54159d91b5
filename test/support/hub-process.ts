/**
 * The hub as an operator runs it: `node --import tsx src/main.ts` in its own
 * process, configured only by environment variables, on a fixed port and
 * data dir (tests of crashes, restarts, exit codes and signals).
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { OPERATOR_TOKEN } from './hub.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export function spawnHubProcess(opts: { port: number; dataDir: string; env?: Record<string, string>; stdio: StdioOptions }): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      PULSEWIRE_HOST: '127.0.0.1',
      PULSEWIRE_PORT: String(opts.port),
      PULSEWIRE_DATA_DIR: opts.dataDir,
      PULSEWIRE_OPERATOR_TOKEN: OPERATOR_TOKEN,
      PULSEWIRE_LOG_LEVEL: process.env.PULSEWIRE_TEST_LOG ?? 'warn',
      ...opts.env,
    },
    stdio: opts.stdio,
  });
}
