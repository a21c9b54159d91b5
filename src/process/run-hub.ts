/**
 * One hub process: a managed influxd when no PULSEWIRE_INFLUX_URL is given,
 * the app, the listener, the banner, and a bounded graceful shutdown on
 * SIGTERM/SIGINT. The same code runs a worker of a hub of several processes
 * (workers/primary.ts): the primary then owns influxd and nats-server, prints
 * the banner for all workers together, and answers /metrics for the hub.
 */
import cluster from 'node:cluster';
import { buildApp } from '../app.js';
import type { Config } from '../config/index.js';
import { isPulsewireError } from '../errors/catalog.js';
import { deviceCapacity, openFilesLimit } from '../gateway/capacity.js';
import { startManagedInfluxd, type ManagedInfluxd } from '../storage/managed-influxd.js';
import { drainLeftoverSpools } from '../storage/orphan-spools.js';
import { workerMetricsSource, type WorkerMessage } from '../workers/messages.js';
import { bannerLines, clusterLine, redactUrl } from './banner.js';
import { fail } from './fail.js';

export const MANAGED_DATABASE = 'pulsewire';

export async function runHub(config: Config): Promise<void> {
  const asWorker = cluster.isWorker;
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
    app = await buildApp(config, { influxUrl, ...(asWorker ? { hubMetrics: workerMetricsSource() } : {}) });
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
  // Started by a supervisor with an IPC channel (npm run demo, the bench, a hub's primary process):
  // when it is gone, however it died, nobody will stop this hub, so it stops itself rather than
  // hold the port and the data dir as an orphan.
  if (process.channel) process.once('disconnect', () => void stop('supervisor gone'));

  let address: string;
  try {
    address = await app.listen({ host: config.host, port: config.port, backlog: config.listenBacklog });
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
  app.log.info({ address, influx: managed ? `managed influxd at ${managed.url}` : redactUrl(influxUrl) }, 'Pulsewire hub listening');
  const capacity = deviceCapacity(openFilesLimit());
  if (asWorker) {
    // The primary prints one banner for every worker once they all listen.
    process.send?.({ type: 'pulsewire:listening', address, capacity } satisfies WorkerMessage);
    return;
  }
  if (capacity !== undefined && capacity < 100_000) {
    app.log.warn({ maxDeviceConnections: capacity }, `the open-files limit allows about ${capacity} device connections; raise it with \`ulimit -n\` (and the hard limit), or run several workers (PULSEWIRE_WORKERS), for more`);
  }
  const { nodes } = app.services;
  const lines = bannerLines(config, {
    address,
    capacity,
    influx: managed ? `${managed.url} (managed, files in ${config.dataDir}/influxdb)` : redactUrl(influxUrl),
    ...(config.cluster ? { cluster: clusterLine(config, 1 + nodes.known().filter((n) => nodes.isAlive(n)).length)! } : {}),
  });
  process.stdout.write(`${lines.join('\n')}\n`);
  // Spools an earlier run of this hub with several workers left in its worker slots.
  if (config.workers === 1) void drainLeftoverSpools(config.dataDir, 1, influxUrl, { logger: app.log, batchPoints: config.writeBatchPoints });
}
