/**
 * A private nats-server with JetStream, owned by this process: started on a
 * free loopback port with its store under a given data dir, stopped with us.
 * The test suite runs its cluster tests against it; a hub may later use it
 * when no PULSEWIRE_NATS_URL is given (see storage/managed-influxd.ts, which
 * this follows). There is no supervisor here: a test that stops the server
 * wants it to stay down, and restart() is explicit.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { PulsewireError } from '../errors/catalog.js';
import { ChildServer, findBinary } from '../process/child-server.js';
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
  /** From now on it is restarted on the same port and store when it dies (a hub's own nats-server). */
  supervise(): void;
  stop(options?: { signal?: NodeJS.Signals }): Promise<void>;
}

const MISSING_HINT = 'nats-server was not found on PATH, /usr/bin or /usr/sbin; run `npm run setup` (which apt-get installs Debian\'s nats-server)';
const PORT_ATTEMPTS = 4;

export function findNatsServer(explicitPath?: string): Promise<string> {
  return findBinary('nats-server', { code: 'PW_ERR_NATS_MISSING', hint: MISSING_HINT }, explicitPath);
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

class NatsServerProcess implements ManagedNatsServer {
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  readonly server: ChildServer;
  readonly #log: StorageLogger;

  constructor(binary: string, configFile: string, port: number, storeDir: string, log: StorageLogger, stopTimeoutMs: number) {
    this.port = port;
    this.url = `nats://127.0.0.1:${port}`;
    this.storeDir = storeDir;
    this.#log = log;
    const url = this.url;
    this.server = new ChildServer({
      name: 'nats-server', binary, args: ['-c', configFile],
      ready: () => jetStreamAnswers(url), readyWhere: `${url} (JetStream)`,
      isWarning: (line) => line.includes('[ERR]') || line.includes('[WRN]'),
      failureCode: 'PW_ERR_NATS_UNAVAILABLE', log, stopTimeoutMs,
    });
  }

  get pid(): number | undefined {
    return this.server.pid;
  }

  supervise(): void {
    this.server.supervise();
  }

  async restart({ signal = 'SIGTERM', whileDown }: RestartOptions = {}): Promise<void> {
    await this.server.terminate(signal);
    await whileDown?.();
    // Same port and store: clients reconnect to the URL they have and find their streams.
    await this.server.launch(30_000);
    this.#log.info({ url: this.url, pid: this.pid }, 'managed nats-server restarted');
  }

  async stop({ signal = 'SIGTERM' }: { signal?: NodeJS.Signals } = {}): Promise<void> {
    await this.server.stop(signal);
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
      await server.server.launch(options.readyTimeoutMs ?? 30_000);
      logger.info({ url: server.url, pid: server.pid, storeDir }, 'managed nats-server ready');
      return server;
    } catch (err) {
      lastError = err;
      await server.stop();
      // Another process can take the port between our probe and the server's bind: pick another.
      if (!server.server.stderrTail.includes('address already in use') || options.port !== undefined) throw err;
      logger.warn({ attempt, port }, 'nats-server port taken, retrying with another');
    }
  }
  throw lastError ?? new PulsewireError('PW_ERR_NATS_UNAVAILABLE', 'no free port for nats-server');
}
