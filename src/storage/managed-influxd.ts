/**
 * A private influxd owned by this process: started on free loopback ports,
 * restarted if it dies, stopped with us. Used when no PULSEWIRE_INFLUX_URL
 * is configured, and by the test suite.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { PulsewireError } from '../errors/catalog.js';
import { findInfluxd, freePort, writeInfluxdConfig } from './influxd-config.js';
import { silentLogger, type StorageLogger } from './logger.js';

export type ManagedInfluxdOptions = {
  dataDir: string;
  logger?: StorageLogger;
  bindHost?: string;
  /** Overrides the PATH search; mostly for tests. */
  influxdPath?: string;
  readyTimeoutMs?: number;
  /** How long stop() waits after SIGTERM before SIGKILL. */
  stopTimeoutMs?: number;
  /**
   * A fixed HTTP port instead of a free one: a new influxd on the same data
   * dir and port looks to its clients like the old one back from an outage
   * (the outage tests). No retry with other ports when it is taken.
   */
  httpPort?: number;
};

export interface ManagedInfluxd {
  /** http://127.0.0.1:PORT, stable across restarts. */
  readonly url: string;
  readonly httpPort: number;
  /** The current influxd process id; changes when the supervisor restarts it. */
  readonly pid: number | undefined;
  readonly restarts: number;
  stop(): Promise<void>;
}

const STDERR_TAIL_LINES = 30;
const PORT_ATTEMPTS = 4;
const RESTART_BACKOFF_MIN_MS = 250;
const RESTART_BACKOFF_MAX_MS = 30_000;

/** influxd reads INFLUXDB_* variables as config overrides; ours must not be overridden by accident. */
function childEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('INFLUXDB_')));
}

/** One GET /ping; influxd answers 204 once its HTTP service is up. */
function ping(url: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(`${url}/ping`, { timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode === 204);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

/** A wildcard bind is reached through loopback; an IPv6 literal needs brackets in a URL. */
function urlHost(bindHost: string): string {
  if (bindHost === '0.0.0.0' || bindHost === '') return '127.0.0.1';
  if (bindHost === '::') return '[::1]';
  return bindHost.includes(':') ? `[${bindHost}]` : bindHost;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

class InfluxdProcess implements ManagedInfluxd {
  readonly url: string;
  readonly httpPort: number;
  #binary: string;
  #configFile: string;
  #log: StorageLogger;
  #stopTimeoutMs: number;
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #stderrTail: string[] = [];
  #supervising = false;
  #stopping = false;
  #restarts = 0;
  #backoffMs = RESTART_BACKOFF_MIN_MS;
  #restartTimer: NodeJS.Timeout | undefined;
  // A parent that exits without stop() must not leave an orphan holding the data dir.
  #onParentExit = (): void => {
    this.#child?.kill('SIGKILL');
  };

  constructor(binary: string, configFile: string, url: string, httpPort: number, log: StorageLogger, stopTimeoutMs: number) {
    this.#binary = binary;
    this.#configFile = configFile;
    this.httpPort = httpPort;
    this.url = url;
    this.#log = log;
    this.#stopTimeoutMs = stopTimeoutMs;
    process.on('exit', this.#onParentExit);
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  get restarts(): number {
    return this.#restarts;
  }

  get stderrTail(): string {
    return this.#stderrTail.join('\n');
  }

  /** Spawns influxd and resolves when it answers /ping, rejects if it exits or the deadline passes. */
  async launch(readyTimeoutMs: number): Promise<void> {
    const child = spawn(this.#binary, ['run', '-config', this.#configFile], {
      env: childEnv(),
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.#child = child;
    let exitInfo: string | undefined;
    this.#exited = new Promise((resolve) => {
      const onGone = (why: string): void => {
        if (exitInfo !== undefined) return;
        exitInfo = why;
        resolve();
        this.#onChildGone(child, why);
      };
      child.once('exit', (code, signal) => onGone(signal ? `killed by ${signal}` : `exited with code ${code}`));
      child.once('error', (err) => onGone(`failed to spawn: ${err.message}`));
    });
    this.#captureStderr(child);

    const deadline = Date.now() + readyTimeoutMs;
    while (exitInfo === undefined && Date.now() < deadline) {
      if (await ping(this.url, 1000)) return;
      await Promise.race([sleep(100), this.#exited]);
    }
    if (exitInfo === undefined) child.kill('SIGKILL');
    const why = exitInfo ?? `did not answer ${this.url}/ping within ${readyTimeoutMs} ms`;
    throw new PulsewireError('PW_ERR_STORAGE_UNAVAILABLE', `influxd ${why}; last stderr lines:\n${this.stderrTail}`);
  }

  /** After the first successful start, an unexpected exit is restarted with capped exponential backoff. */
  supervise(): void {
    this.#supervising = true;
    this.#backoffMs = RESTART_BACKOFF_MIN_MS;
  }

  #onChildGone(child: ChildProcess, why: string): void {
    if (child !== this.#child || !this.#supervising || this.#stopping) return;
    const delayMs = this.#backoffMs;
    this.#backoffMs = Math.min(this.#backoffMs * 2, RESTART_BACKOFF_MAX_MS);
    this.#log.error({ why, delayMs, stderr: this.stderrTail }, 'managed influxd died unexpectedly; restarting');
    this.#restartTimer = setTimeout(() => void this.#restart(), delayMs);
  }

  async #restart(): Promise<void> {
    if (this.#stopping) return;
    this.#restarts += 1;
    try {
      // Same port and config: the URL handed out must stay valid.
      await this.launch(30_000);
      this.#backoffMs = RESTART_BACKOFF_MIN_MS;
      this.#log.info({ pid: this.pid, restarts: this.#restarts }, 'managed influxd restarted');
    } catch (err) {
      // No new timer here: launch() killed or lost the child, and its exit schedules the next attempt.
      if (!this.#stopping) this.#log.error({ err }, 'managed influxd restart failed');
    }
  }

  #captureStderr(child: ChildProcess): void {
    let partial = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        this.#stderrTail.push(line);
        if (line.includes('lvl=error') || line.includes('lvl=warn')) this.#log.warn({ influxd: line }, 'influxd');
      }
      if (this.#stderrTail.length > STDERR_TAIL_LINES) this.#stderrTail.splice(0, this.#stderrTail.length - STDERR_TAIL_LINES);
    });
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#restartTimer);
    const child = this.#child;
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), this.#stopTimeoutMs);
      await this.#exited;
      clearTimeout(timer);
    }
    process.off('exit', this.#onParentExit);
  }
}

export async function startManagedInfluxd(options: ManagedInfluxdOptions): Promise<ManagedInfluxd> {
  const { dataDir, logger = silentLogger, bindHost = '127.0.0.1' } = options;
  const readyTimeoutMs = options.readyTimeoutMs ?? 30_000;
  const binary = await findInfluxd(options.influxdPath);
  let lastError: unknown;
  for (let attempt = 1; attempt <= PORT_ATTEMPTS; attempt += 1) {
    const [freeHttp, rpcPort] = await Promise.all([freePort(bindHost), freePort(bindHost)]);
    const httpPort = options.httpPort ?? freeHttp;
    if (httpPort === rpcPort) continue;
    const { configFile } = await writeInfluxdConfig(dataDir, bindHost, httpPort, rpcPort);
    const url = `http://${urlHost(bindHost)}:${httpPort}`;
    const influxd = new InfluxdProcess(binary, configFile, url, httpPort, logger, options.stopTimeoutMs ?? 10_000);
    try {
      await influxd.launch(readyTimeoutMs);
      influxd.supervise();
      logger.info({ url: influxd.url, pid: influxd.pid, dataDir }, 'managed influxd ready');
      return influxd;
    } catch (err) {
      lastError = err;
      await influxd.stop();
      // Another process can grab a port between our probe and influxd's bind: pick new ones.
      if (!influxd.stderrTail.includes('address already in use') || options.httpPort !== undefined) throw err;
      logger.warn({ attempt, httpPort, rpcPort }, 'influxd port taken, retrying with new ports');
    }
  }
  throw lastError ?? new PulsewireError('PW_ERR_STORAGE_UNAVAILABLE', 'could not find free ports for influxd');
}
