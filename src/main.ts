/**
 * Runs the hub as a process: configuration from the environment, a managed
 * influxd when no PULSEWIRE_INFLUX_URL is given, the listener, a start banner
 * that says where to look, and a bounded graceful shutdown on SIGTERM/SIGINT.
 */
import { buildApp } from './app.js';
import { loadConfig, type Config } from './config/index.js';
import { redact as redactNatsUrl } from './cluster/nats-link.js';
import { isPulsewireError } from './errors/catalog.js';
import { deviceCapacity, openFilesLimit } from './gateway/capacity.js';
import { DEVICE_PATH } from './protocol/messages.js';
import { startManagedInfluxd, type ManagedInfluxd } from './storage/managed-influxd.js';

const MANAGED_DATABASE = 'pulsewire';

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    return fail(err, 2);
  }

  let managed: ManagedInfluxd | undefined;
  let influxUrl = config.influxUrl;
  if (influxUrl === undefined) {
    try {
      managed = await startManagedInfluxd({ dataDir: config.dataDir });
    } catch (err) {
      return fail(err, 3);
    }
    influxUrl = `${managed.url}/${MANAGED_DATABASE}`;
  }

  let app: Awaited<ReturnType<typeof buildApp>>;
  try {
    app = await buildApp(config, { influxUrl });
  } catch (err) {
    await managed?.stop().catch(() => undefined);
    // A node that cannot reach NATS at start has nothing to serve: its devices' identities are there.
    if (isPulsewireError(err, 'PW_ERR_NATS_UNREACHABLE')) return fail(err, 5);
    throw err;
  }
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.log.info({ signal }, 'shutting down: closing devices with 1001, flushing writes');
    const deadline = setTimeout(() => {
      app.log.error({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown took too long; exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs);
    try {
      await app.close();
      await managed?.stop();
    } finally {
      clearTimeout(deadline);
    }
    app.log.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  // Started by a supervisor with an IPC channel (npm run demo, the bench): when it is
  // gone, however it died, nobody will stop this hub, so it stops itself rather than
  // hold the port and the data dir as an orphan.
  if (process.channel) process.once('disconnect', () => void stop('supervisor gone'));

  let address: string;
  try {
    address = await app.listen({ host: config.host, port: config.port });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'EADDRINUSE' ? 'another process already listens there (set PULSEWIRE_PORT or PULSEWIRE_HOST)'
      : code === 'EACCES' ? 'not allowed to listen there (ports below 1024 need privileges; set PULSEWIRE_PORT)'
      : code === 'EADDRNOTAVAIL' ? 'no such address on this machine (PULSEWIRE_HOST)'
      : String((err as Error).message);
    app.log.error({ err, host: config.host, port: config.port }, 'cannot listen');
    process.stderr.write(`pulsewire: cannot listen on ${config.host}:${config.port}: ${code ?? 'error'}: ${why}\n`);
    await app.close().catch(() => undefined);
    await managed?.stop().catch(() => undefined);
    process.exit(4);
  }
  const wsScheme = config.tls ? 'wss' : 'ws';
  const base = new URL(address);
  app.log.info({ address, influx: managed ? `managed influxd at ${managed.url}` : redact(influxUrl) }, 'Pulsewire hub listening');
  const capacity = deviceCapacity(openFilesLimit());
  if (capacity !== undefined && capacity < 100_000) {
    app.log.warn({ maxDeviceConnections: capacity }, `the open-files limit allows about ${capacity} device connections; raise it with \`ulimit -n\` (and the hard limit) before starting the hub for more`);
  }
  const lines = [
    '',
    `  Pulsewire hub on ${address}`,
    `  dashboard: ${address}/  (log in with the operator token)`,
    `  devices:   ${wsScheme}://${base.host}${DEVICE_PATH}  (subprotocol pulsewire.v1)`,
    `  API:       ${address}/v1/devices   OpenAPI: ${address}/openapi.json`,
    `  metrics:   ${address}/metrics      ready: ${address}/readyz`,
    `  capacity:  about ${capacity ?? 'unlimited'} device connections (open-files limit)`,
    `  InfluxDB:  ${managed ? `${managed.url} (managed, files in ${config.dataDir}/influxdb)` : redact(influxUrl)}`,
    ...(config.cluster
      ? [`  cluster:   node ${config.nodeId} of "${config.cluster.name}" via NATS ${config.cluster.servers.map(redactNatsUrl).join(', ')} (${1 + app.services.nodes.known().filter((n) => app.services.nodes.isAlive(n)).length} nodes alive)`]
      : []),
    config.operatorTokenGenerated
      ? `  operator token (generated; set PULSEWIRE_OPERATOR_TOKEN to keep one): ${config.operatorToken}`
      : '  operator token: from PULSEWIRE_OPERATOR_TOKEN',
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

function redact(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
}

function fail(err: unknown, exitCode: number): void {
  const message = isPulsewireError(err) ? `${err.code}: ${err.message}` : String((err as Error)?.stack ?? err);
  process.stderr.write(`pulsewire: ${message}\n`);
  process.exit(exitCode);
}

void main();
