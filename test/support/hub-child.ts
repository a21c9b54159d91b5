/**
 * A hub process (src/main.ts via tsx, spawnHubProcess) that listens on port
 * 0 and says where in its start banner: each start, also a restart on the
 * same data dir, gets a port no other test can have taken meanwhile.
 */
import type { ChildProcess } from 'node:child_process';
import { spawnHubProcess } from './hub-process.js';
import { ENROLLMENT_KEY, OPERATOR_TOKEN } from './hub.js';

/** tsx compiles the hub on start; on a busy machine that takes a while. */
const START_TIMEOUT_MS = 60_000;

export type HubChild = {
  child: ChildProcess;
  /** http://127.0.0.1:PORT */
  baseUrl: string;
  /** ws://127.0.0.1:PORT/v1/device */
  deviceUrl: string;
  api(method: string, route: string, body?: unknown): Promise<{ status: number; body: any }>;
  /** SIGKILL, as a crash: resolves once the process is gone. */
  kill9(): Promise<void>;
  /** SIGTERM, a graceful stop; SIGKILL if it takes longer than `ms`. */
  stop(ms?: number): Promise<void>;
};

export async function startHubChild(opts: { dataDir: string; env?: Record<string, string> }): Promise<HubChild> {
  const child = spawnHubProcess({
    port: 0, dataDir: opts.dataDir, env: { PULSEWIRE_ENROLLMENT_KEY: ENROLLMENT_KEY, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let output = '';
  child.stderr!.on('data', (chunk: Buffer) => { output += chunk; });
  const baseUrl = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`hub did not start within ${START_TIMEOUT_MS} ms:\n${output}`)), START_TIMEOUT_MS);
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk;
      const match = /Pulsewire hub on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    void exited.then(() => { clearTimeout(timer); reject(new Error(`hub exited with ${child.exitCode ?? child.signalCode}:\n${output}`)); });
  }).catch((err: unknown) => {
    child.kill('SIGKILL');
    throw err;
  });
  const gone = async (signal: NodeJS.Signals, ms: number) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    const hard = setTimeout(() => child.kill('SIGKILL'), ms);
    await exited;
    clearTimeout(hard);
  };
  return {
    child,
    baseUrl,
    deviceUrl: `${baseUrl.replace(/^http/, 'ws')}/v1/device`,
    async api(method, route, body) {
      const res = await fetch(`${baseUrl}${route}`, {
        method,
        headers: { authorization: `Bearer ${OPERATOR_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined };
    },
    kill9: () => gone('SIGKILL', 0),
    stop: (ms = 15_000) => gone('SIGTERM', ms),
  };
}
