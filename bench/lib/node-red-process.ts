/**
 * Node-RED 4 (the node-red package) as its own process, the way a user runs
 * it: `red.js` with a settings file and a flow file in a fresh temp dir.
 * Loopback only, port 0 (the port it got is read from its log), no editor,
 * no admin API, no palette installs.
 * The bench's Node-RED peer and the test of docs/node-red-flow.json both
 * start it here.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { until } from './proc.js';

const require = createRequire(import.meta.url);

export type NodeRedOptions = {
  /** The flow, as Node-RED's flows.json holds it (an array of nodes). */
  flow: unknown[];
  /** Prefix of the temp dir (userDir, settings.js, flows.json). */
  dirPrefix: string;
  /** Environment of the process on top of this one's: what `${VAR}` and `$env('VAR')` in the flow read. */
  env?: Record<string, string>;
  /** More settings.js properties, as JavaScript source (e.g. `functionGlobalContext: {...},`). */
  extraSettings?: string;
  startTimeoutMs?: number;
};

export type NodeRedProcess = {
  pid: number;
  port: number;
  /** The temp dir; removed by stop(). */
  dir: string;
  /** The last 20,000 characters Node-RED wrote to stdout and stderr. */
  log(): string;
  /** Node-RED's `[error]` log lines so far, by message (digits folded), with counts. */
  errors(): Record<string, number>;
  stop(): Promise<void>;
};

// Port 0: a port found free and handed over could be taken by another process before Node-RED binds it.
function settingsSource(dir: string, extra: string): string {
  return `module.exports = {
  uiHost: '127.0.0.1',
  uiPort: 0,
  userDir: ${JSON.stringify(dir)},
  flowFile: 'flows.json',
  credentialSecret: false,
  httpAdminRoot: false,
  disableEditor: true,
  diagnostics: { enabled: false, ui: false },
  telemetry: { enabled: false },
  externalModules: { autoInstall: false, palette: { allowInstall: false }, modules: { allowInstall: false } },
  functionExternalModules: false,
  logging: { console: { level: 'info', metrics: false, audit: false } },
  ${extra}
};
`;
}

/** Starts Node-RED with `flow`; resolves once it logged "Started flows", rejects with its log if it did not, or lacks a node type. */
export async function startNodeRed(opts: NodeRedOptions): Promise<NodeRedProcess> {
  const dir = mkdtempSync(path.join(os.tmpdir(), opts.dirPrefix));
  writeFileSync(path.join(dir, 'flows.json'), JSON.stringify(opts.flow, null, 2));
  writeFileSync(path.join(dir, 'settings.js'), settingsSource(dir, opts.extraSettings ?? ''));
  const redJs = require.resolve('node-red/red.js');
  const child: ChildProcess = spawn(process.execPath, [redJs, '--settings', path.join(dir, 'settings.js'), '--userDir', dir], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...opts.env },
  });
  let log = '';
  const errors: Record<string, number> = {};
  let partial = '';
  const onData = (c: Buffer) => {
    log = (log + c).slice(-20_000);
    const lines = (partial + c).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      const at = line.indexOf('[error]');
      if (at < 0) continue;
      const key = line.slice(at + 8).replace(/\d+/g, 'N').slice(0, 160);
      errors[key] = (errors[key] ?? 0) + 1;
    }
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // "Server now running at http://127.0.0.1:PORT" once it listens, with the port it got.
  const listening = () => /Server now running at https?:\/\/[^\s:]+:(\d+)/.exec(log);
  const started = await until(() => (/Started flows/.test(log) && listening() !== null) || child.exitCode !== null, opts.startTimeoutMs ?? 60_000, 100);
  const port = Number(listening()?.[1] ?? 0);
  if (!started || child.exitCode !== null || !port || /Missing node types|Waiting for missing types/.test(log)) {
    child.kill('SIGKILL');
    await exited;
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`Node-RED did not start the flow:\n${log}`);
  }
  return {
    pid: child.pid!,
    port,
    dir,
    log: () => log,
    errors: () => ({ ...errors }),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
