/**
 * A hub process (src/main.ts via tsx, spawnHubProcess) that listens on port
 * 0 and says where in its start banner: each start, also a restart on the
 * same data dir, gets a port no other test can have taken meanwhile.
 *
 * The same shape as startHubProcess on the t-sockets branch (child,
 * baseUrl, deviceUrl, kill); once that is merged, this file goes and its
 * callers import that instead.
 */
import type { ChildProcess } from 'node:child_process';
import { spawnHubProcess } from './hub-process.js';

/** tsx compiles the hub on start; on a busy machine that takes a while. */
const START_TIMEOUT_MS = 60_000;

export type HubChild = {
  readonly child: ChildProcess;
  /** http://127.0.0.1:PORT */
  readonly baseUrl: string;
  /** ws://127.0.0.1:PORT/v1/device */
  readonly deviceUrl: string;
  /** Sends `signal` (default SIGKILL: a crash) and waits for the exit; the exit code (null: killed by a signal). */
  kill(signal?: NodeJS.Signals): Promise<number | null>;
};

export async function startHubChild(opts: { dataDir: string; env?: Record<string, string> }): Promise<HubChild> {
  const child = spawnHubProcess({ port: 0, dataDir: opts.dataDir, env: opts.env ?? {}, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let output = '';
  child.stderr!.on('data', (chunk: Buffer) => { output += chunk; });
  const baseUrl = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`hub did not start within ${START_TIMEOUT_MS} ms:\n${output}`)), START_TIMEOUT_MS);
    child.stdout!.on('data', (chunk: Buffer) => {
      // Only the banner is needed; log lines that follow are read and dropped.
      if (output.length > 64 * 1024) return;
      output += chunk;
      const match = /Pulsewire hub on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    void exited.then(() => { clearTimeout(timer); reject(new Error(`hub exited before listening:\n${output}`)); });
  }).catch(async (err: unknown) => {
    child.kill('SIGKILL');
    await exited;
    throw err;
  });
  return {
    child,
    baseUrl,
    deviceUrl: `${baseUrl.replace(/^http/, 'ws')}/v1/device`,
    async kill(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
