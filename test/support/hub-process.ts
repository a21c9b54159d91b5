/**
 * The hub as an operator runs it: `node --import tsx src/main.ts` in its own
 * process, configured only by environment variables (tests of crashes,
 * restarts, exit codes and signals).
 *
 * Ports: `startHubProcess` lets the kernel pick a free port (PULSEWIRE_PORT=0)
 * and reads it back from the hub's start banner, so no other test worker can
 * take it between a pick and the bind. A restart that must keep its address
 * (devices reconnect to the same URL) passes the previous `port`; if another
 * process holds it for a moment, the start is retried until it is free.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { OPERATOR_TOKEN } from './hub.js';
import { sleep } from './wait.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Spawns the hub and nothing more: no waiting, no port read back. For a test
 * of how it fails to start (a port taken on purpose); otherwise use
 * startHubProcess. `port` defaults to 0 (a free port chosen by the kernel).
 */
export function spawnHubProcess(opts: { port?: number; dataDir: string; env?: Record<string, string>; stdio: StdioOptions }): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      PULSEWIRE_HOST: '127.0.0.1',
      PULSEWIRE_PORT: String(opts.port ?? 0),
      PULSEWIRE_DATA_DIR: opts.dataDir,
      PULSEWIRE_OPERATOR_TOKEN: OPERATOR_TOKEN,
      PULSEWIRE_LOG_LEVEL: process.env.PULSEWIRE_TEST_LOG ?? 'warn',
      ...opts.env,
    },
    stdio: opts.stdio,
  });
}

export type HubProcessOptions = {
  dataDir: string;
  env?: Record<string, string>;
  /** Listen on this port (a restart whose devices reconnect to the same URL); default 0: a free one. */
  port?: number;
  /** Open an IPC channel too: the hub then stops itself when this process disconnects (src/main.ts). */
  ipc?: boolean;
  /** The hub's stderr: kept for `stderr()` (default) or passed through to the test's own. */
  stderr?: 'pipe' | 'inherit';
  /** Keep everything the hub writes to stdout (its log), for `stdout()`; by default only the banner is read. */
  keepStdout?: boolean;
  /** How long to wait for the banner (the managed influxd, when used, starts first). */
  startTimeoutMs?: number;
  /** With a given `port`: how long to keep retrying while another process holds it. */
  portRetryMs?: number;
};

export type HubProcess = {
  readonly child: ChildProcess;
  readonly port: number;
  /** http://127.0.0.1:PORT */
  readonly baseUrl: string;
  /** ws://127.0.0.1:PORT/v1/device */
  readonly deviceUrl: string;
  /** Exit code (null: killed by a signal). */
  readonly exited: Promise<number | null>;
  /** What the hub wrote to stderr so far (empty with stderr: 'inherit'). */
  stderr(): string;
  /** What the hub wrote to stdout so far, its log included (with `keepStdout`; else the first 64 KiB at most). */
  stdout(): string;
  /** Sends `signal` (default SIGKILL: a crash) and waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<number | null>;
};

const BANNER = /Pulsewire hub on (https?):\/\/[^:\s]+:(\d+)/;

/** Starts the hub and resolves once it listens (its banner is out), with the port it got. */
export async function startHubProcess(opts: HubProcessOptions): Promise<HubProcess> {
  const retryUntil = Date.now() + (opts.portRetryMs ?? 30_000);
  for (;;) {
    const attempt = await startOnce(opts);
    if (attempt.ok) return attempt.hub;
    const portTaken = opts.port !== undefined && opts.port !== 0 && attempt.exitCode === 4 && /EADDRINUSE/.test(attempt.stderr);
    if (!portTaken || Date.now() > retryUntil) {
      throw new Error(`hub process did not start (exit ${attempt.exitCode}): ${attempt.reason}\nstderr:\n${attempt.stderr}`);
    }
    await sleep(250);
  }
}

type Attempt = { ok: true; hub: HubProcess } | { ok: false; exitCode: number | null; reason: string; stderr: string };

async function startOnce(opts: HubProcessOptions): Promise<Attempt> {
  const stderrMode = opts.stderr ?? 'pipe';
  const child = spawnHubProcess({
    dataDir: opts.dataDir,
    port: opts.port ?? 0,
    ...(opts.env ? { env: opts.env } : {}),
    stdio: ['ignore', 'pipe', stderrMode, ...(opts.ipc ? ['ipc' as const] : [])],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => { stderr += chunk; });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  // After 'exit' its pipes may still hold output; 'close' comes once they are drained.
  const drained = new Promise<void>((resolve) => child.once('close', () => resolve()));
  // Only the banner is needed from stdout (log lines go there too); the rest is read and dropped.
  let stdout = '';
  const banner = new Promise<RegExpExecArray | undefined>((resolve) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      if (stdout.length > 64 * 1024 && !opts.keepStdout) return;
      stdout += chunk;
      const match = BANNER.exec(stdout);
      if (match) resolve(match);
    });
    void exited.then(() => resolve(undefined));
  });
  const timeoutMs = opts.startTimeoutMs ?? 60_000;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), timeoutMs); });
  const outcome = await Promise.race([banner, timedOut]);
  clearTimeout(timer);
  if (outcome === 'timeout' || outcome === undefined) {
    if (child.exitCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
    const reason = outcome === 'timeout' ? `no start banner within ${timeoutMs} ms` : 'exited before listening';
    const exitCode = await exited;
    await drained;
    return { ok: false, exitCode, reason, stderr };
  }
  const [, scheme, port] = outcome;
  const hub: HubProcess = {
    child,
    port: Number(port),
    baseUrl: `${scheme}://127.0.0.1:${port}`,
    deviceUrl: `${scheme === 'https' ? 'wss' : 'ws'}://127.0.0.1:${port}/v1/device`,
    exited,
    stderr: () => stderr,
    stdout: () => stdout,
    async kill(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
  return { ok: true, hub };
}
