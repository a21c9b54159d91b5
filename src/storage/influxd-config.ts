/**
 * What a managed influxd needs before it is spawned: the binary, two free
 * loopback ports and a config file that keeps it private, quiet and local.
 */

import { mkdir, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { findBinary } from '../process/child-server.js';

export const INFLUXD_MISSING_HINT =
  'influxd (InfluxDB 1.x) was not found on PATH, /usr/bin or /usr/sbin; ' +
  'run `npm run setup` (which apt-get installs Debian\'s influxdb) ' +
  'or set PULSEWIRE_INFLUX_URL to use an InfluxDB you run yourself';

/**
 * Resolves the influxd binary. An explicit path must exist; otherwise PATH
 * and the usual system directories are searched in that order.
 */
export function findInfluxd(explicitPath?: string): Promise<string> {
  return findBinary('influxd', { code: 'PW_ERR_INFLUXD_MISSING', hint: INFLUXD_MISSING_HINT }, explicitPath);
}

/**
 * Asks the kernel for a free port. There is a window between closing our
 * socket and influxd binding it; the caller retries on "address in use".
 */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error('no port assigned'))));
    });
  });
}

export type InfluxdLayout = {
  /** `${dataDir}/influxdb`: everything influxd writes lives below it. */
  root: string;
  configFile: string;
};

/** TOML basic strings accept JSON's escapes for the characters a path can hold. */
const toml = (value: string): string => JSON.stringify(value);
const hostPort = (host: string, port: number): string => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);

export function renderInfluxdConfig(root: string, bindHost: string, httpPort: number, rpcPort: number): string {
  return `# Written by Pulsewire for a managed influxd; rewritten on every start.
reporting-disabled = true
bind-address = ${toml(hostPort(bindHost, rpcPort))}

[meta]
  dir = ${toml(path.join(root, 'meta'))}
  logging-enabled = false

[data]
  dir = ${toml(path.join(root, 'data'))}
  wal-dir = ${toml(path.join(root, 'wal'))}
  query-log-enabled = false
  trace-logging-enabled = false
  # The \`name\` tag holds each device's series names (SenML base names usually carry the device id),
  # so a fleet has about as many of them as devices x series: InfluxDB's default of 100,000 values per
  # tag refused the writes of a 50,000-device fleet (partial writes, dead letters). Unlimited here;
  # series stay bounded by max-series-per-database (1,000,000) and PULSEWIRE_MAX_NAMES_PER_DEVICE.
  max-values-per-tag = 0

[coordinator]
  log-queries-after = "0s"

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = ${toml(hostPort(bindHost, httpPort))}
  auth-enabled = false
  log-enabled = false
  suppress-write-log = true
  pprof-enabled = false
  unix-socket-enabled = false

[logging]
  format = "logfmt"
  level = "info"
  suppress-logo = true

[continuous_queries]
  log-enabled = false

[[graphite]]
  enabled = false

[[collectd]]
  enabled = false

[[opentsdb]]
  enabled = false

[[udp]]
  enabled = false
`;
}

export async function writeInfluxdConfig(
  dataDir: string,
  bindHost: string,
  httpPort: number,
  rpcPort: number,
): Promise<InfluxdLayout> {
  const root = path.resolve(dataDir, 'influxdb');
  await Promise.all(['meta', 'data', 'wal'].map((dir) => mkdir(path.join(root, dir), { recursive: true })));
  const configFile = path.join(root, 'influxdb.conf');
  await writeFile(configFile, renderInfluxdConfig(root, bindHost, httpPort, rpcPort), { mode: 0o600 });
  return { root, configFile };
}
