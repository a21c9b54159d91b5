/**
 * A private influxd owned by this process: started on free loopback ports,
 * restarted if it dies, stopped with us. Used when no PULSEWIRE_INFLUX_URL
 * is configured, and by the test suite.
 */

import http from 'node:http';
import { PulsewireError } from '../errors/catalog.js';
import { ChildServer } from '../process/child-server.js';
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

const PORT_ATTEMPTS = 4;

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

class InfluxdProcess implements ManagedInfluxd {
  readonly url: string;
  readonly httpPort: number;
  readonly server: ChildServer;

  constructor(binary: string, configFile: string, url: string, httpPort: number, log: StorageLogger, stopTimeoutMs: number) {
    this.url = url;
    this.httpPort = httpPort;
    this.server = new ChildServer({
      name: 'influxd', binary, args: ['run', '-config', configFile], env: childEnv(),
      ready: () => ping(url, 1000), readyWhere: `${url}/ping`,
      isWarning: (line) => line.includes('lvl=error') || line.includes('lvl=warn'),
      failureCode: 'PW_ERR_STORAGE_UNAVAILABLE', log, stopTimeoutMs,
    });
  }

  get pid(): number | undefined {
    return this.server.pid;
  }

  get restarts(): number {
    return this.server.restarts;
  }

  stop(): Promise<void> {
    return this.server.stop();
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
      await influxd.server.launch(readyTimeoutMs);
      influxd.server.supervise();
      logger.info({ url: influxd.url, pid: influxd.pid, dataDir }, 'managed influxd ready');
      return influxd;
    } catch (err) {
      lastError = err;
      await influxd.stop();
      // Another process can grab a port between our probe and influxd's bind: pick new ones.
      if (!influxd.server.stderrTail.includes('address already in use') || options.httpPort !== undefined) throw err;
      logger.warn({ attempt, httpPort, rpcPort }, 'influxd port taken, retrying with new ports');
    }
  }
  throw lastError ?? new PulsewireError('PW_ERR_STORAGE_UNAVAILABLE', 'could not find free ports for influxd');
}
