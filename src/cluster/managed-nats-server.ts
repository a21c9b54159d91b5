/**
 * A private nats-server with JetStream, owned by this process: started on a
 * free loopback port with its store under a given data dir, stopped with us.
 * The test suite runs its cluster tests against it; a hub may later use it
 * when no PULSEWIRE_NATS_URL is given (see storage/managed-influxd.ts, which
 * this follows). There is no supervisor here: a test that stops the server
 * wants it to stay down, and restart() is explicit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { access, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { PulsewireError } from '../errors/catalog.js';
import { freePort } from '../storage/influxd-config.js';
import { silentLogger, type StorageLogger } from '../storage/logger.js';

export type ManagedNatsServerOptions = {
  /** Its config and JetStream store go to `${dataDir}/nats`; a new server on the same dir finds the old store. */
  dataDir: string;
  logger?: StorageLogger;
  /** Overrides the PATH search. */
  binaryPath?: string;
  /** A fixed port instead of a free one (no retry when it is taken). */
  port?: number;
  readyTimeoutMs?: number;
  /** How long stop() waits after SIGTERM before SIGKILL. */
  stopTimeoutMs?: number;
};

export type RestartOptions = { signal?: NodeJS.Signals; whileDown?: () => Promise<void> };

export interface ManagedNatsServer {
  /** nats://127.0.0.1:PORT, the same after restart(). */
  readonly url: string;
  readonly port: number;
  readonly pid: number | undefined;
  /** JetStream's store directory, kept by restart() and stop(). */
  readonly storeDir: string;
  /**
   * Stops the server (SIGTERM, or `signal`, e.g. SIGKILL for a crash), runs
   * `whileDown` (a test's look at its clients during the outage), and starts
   * it again on the same port and store.
   */
  restart(options?: RestartOptions): Promise<void>;
  stop(options?: { signal?: NodeJS.Signals }): Promise<void>;
}

const FALLBACK_DIRS = ['/usr/bin', '/usr/sbin', '/usr/local/bin'];
const MISSING_HINT = 'nats-server was not found on PATH, /usr/bin or /usr/sbin; run `npm run setup` (which apt-get installs Debian\'s nats-server)';
const PORT_ATTEMPTS = 4;
const STDERR_TAIL_LINES = 30;

export async function findNatsServer(explicitPath?: string): Promise<string> {
  const candidates = explicitPath !== undefined
    ? [explicitPath]
    : (process.env['PATH'] ?? '').split(path.delimiter).filter(Boolean).concat(FALLBACK_DIRS).map((dir) => path.join(dir, 'nats-server'));
  for (const candidate of candidates) {
    try {
      await access(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // next one
    }
  }
  throw new PulsewireError('PW_ERR_NATS_MISSING', explicitPath !== undefined ? `${explicitPath} is not executable` : MISSING_HINT);
}

/** Loopback only, JetStream on, store under the data dir; JSON strings are valid in nats-server's config syntax. */
export function renderNatsConfig(port: number, storeDir: string): string {
  return `# Written by Pulsewire for a managed nats-server; rewritten on every start.
server_name: "pulsewire-managed"
listen: "127.0.0.1:${port}"
jetstream {
  store_dir: ${JSON.stringify(storeDir)}
}
`;
}

/** Ready means JetStream answers, not only that the port is open: it recovers its streams after the listener is up. */
async function jetStreamAnswers(url: string): Promise<boolean> {
  try {
    const nc = await connect({ servers: url, reconnect: false, timeout: 1000 });
    try {
      await (await jetstreamManager(nc, { timeout: 1000 })).getAccountInfo();
      return true;
    } finally {
      await nc.close();
    }
  } catch {
    return false;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

class NatsServerProcess implements ManagedNatsServer {
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  #binary: string;
  #configFile: string;
  #log: StorageLogger;
  #stopTimeoutMs: number;
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #stderrTail: string[] = [];
  // A parent that exits without stop() must not leave an orphan holding the store.
  #onParentExit = (): void => {
    this.#child?.kill('SIGKILL');
  };

  constructor(binary: string, configFile: string, port: number, storeDir: string, log: StorageLogger, stopTimeoutMs: number) {
    this.#binary = binary;
    this.#configFile = configFile;
    this.port = port;
    this.url = `nats://127.0.0.1:${port}`;
    this.storeDir = storeDir;
    this.#log = log;
    this.#stopTimeoutMs = stopTimeoutMs;
    process.on('exit', this.#onParentExit);
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  get stderrTail(): string {
    return this.#stderrTail.join('\n');
  }

  /** Spawns nats-server and resolves once JetStream answers; rejects if it exits or the deadline passes. */
  async launch(readyTimeoutMs: number): Promise<void> {
    this.#stderrTail = [];
    const child = spawn(this.#binary, ['-c', this.#configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.#child = child;
    let exitInfo: string | undefined;
    this.#exited = new Promise((resolve) => {
      const onGone = (why: string): void => {
        if (exitInfo !== undefined) return;
        exitInfo = why;
        resolve();
      };
      child.once('exit', (code, signal) => onGone(signal ? `killed by ${signal}` : `exited with code ${code}`));
      child.once('error', (err) => onGone(`failed to spawn: ${err.message}`));
    });
    this.#captureStderr(child);
    const deadline = Date.now() + readyTimeoutMs;
    while (exitInfo === undefined && Date.now() < deadline) {
      if (await jetStreamAnswers(this.url)) return;
      await Promise.race([sleep(100), this.#exited]);
    }
    if (exitInfo === undefined) child.kill('SIGKILL');
    await this.#exited;
    const why = exitInfo ?? `JetStream did not answer on ${this.url} within ${readyTimeoutMs} ms`;
    throw new PulsewireError('PW_ERR_NATS_UNAVAILABLE', `managed nats-server ${why}; last stderr lines:\n${this.stderrTail}`);
  }

  #captureStderr(child: ChildProcess): void {
    let partial = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        this.#stderrTail.push(line);
        if (line.includes('[ERR]') || line.includes('[WRN]')) this.#log.warn({ natsServer: line }, 'nats-server');
      }
      if (this.#stderrTail.length > STDERR_TAIL_LINES) this.#stderrTail.splice(0, this.#stderrTail.length - STDERR_TAIL_LINES);
    });
  }

  async #terminate(signal: NodeJS.Signals): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), this.#stopTimeoutMs);
    await this.#exited;
    clearTimeout(timer);
  }

  async restart({ signal = 'SIGTERM', whileDown }: RestartOptions = {}): Promise<void> {
    await this.#terminate(signal);
    await whileDown?.();
    // Same port and store: clients reconnect to the URL they have and find their streams.
    await this.launch(30_000);
    this.#log.info({ url: this.url, pid: this.pid }, 'managed nats-server restarted');
  }

  async stop({ signal = 'SIGTERM' }: { signal?: NodeJS.Signals } = {}): Promise<void> {
    await this.#terminate(signal);
    process.off('exit', this.#onParentExit);
  }
}

export async function startManagedNatsServer(options: ManagedNatsServerOptions): Promise<ManagedNatsServer> {
  const { logger = silentLogger } = options;
  const binary = await findNatsServer(options.binaryPath);
  const root = path.resolve(options.dataDir, 'nats');
  const storeDir = path.join(root, 'jetstream');
  await mkdir(storeDir, { recursive: true });
  const configFile = path.join(root, 'nats-server.conf');
  let lastError: unknown;
  for (let attempt = 1; attempt <= PORT_ATTEMPTS; attempt += 1) {
    const port = options.port ?? (await freePort('127.0.0.1'));
    await writeFile(configFile, renderNatsConfig(port, storeDir), { mode: 0o600 });
    const server = new NatsServerProcess(binary, configFile, port, storeDir, logger, options.stopTimeoutMs ?? 10_000);
    try {
      await server.launch(options.readyTimeoutMs ?? 30_000);
      logger.info({ url: server.url, pid: server.pid, storeDir }, 'managed nats-server ready');
      return server;
    } catch (err) {
      lastError = err;
      await server.stop();
      // Another process can take the port between our probe and the server's bind: pick another.
      if (!server.stderrTail.includes('address already in use') || options.port !== undefined) throw err;
      logger.warn({ attempt, port }, 'nats-server port taken, retrying with another');
    }
  }
  throw lastError ?? new PulsewireError('PW_ERR_NATS_UNAVAILABLE', 'no free port for nats-server');
}
