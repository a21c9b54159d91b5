/**
 * A hub of several worker processes (PULSEWIRE_WORKERS > 1). One process
 * holds at most the open-files limit of sockets (about 19,900 here) and one
 * core of work; workers share the one port (node:cluster hands each accepted
 * connection to a worker), so each holds its own sockets and descriptor
 * budget. Every worker is a node of one cluster (src/cluster): devices,
 * commands, state and jobs are shared through NATS JetStream, so whichever
 * worker a connection or request lands on sees the whole hub.
 *
 * This primary process owns what must exist once per hub: InfluxDB (a
 * managed influxd unless PULSEWIRE_INFLUX_URL), NATS (a managed nats-server
 * unless PULSEWIRE_NATS_URL), the operator token, the banner and /metrics for
 * all workers together. It restarts a worker that dies (the worker's devices
 * reconnect through the others meanwhile) and on SIGTERM drains every worker
 * (1001 to their devices) before it stops nats-server and influxd.
 */
import cluster, { type Worker } from 'node:cluster';
import { mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Config } from '../config/index.js';
import { startManagedNatsServer, type ManagedNatsServer } from '../cluster/managed-nats-server.js';
import { deviceCapacity, openFilesLimit } from '../gateway/capacity.js';
import { bannerLines, redactUrl } from '../process/banner.js';
import { fail } from '../process/fail.js';
import { MANAGED_DATABASE } from '../process/run-hub.js';
import { startManagedInfluxd, type ManagedInfluxd } from '../storage/managed-influxd.js';
import { drainLeftoverSpools } from '../storage/orphan-spools.js';
import { copyLocalStoresToCluster } from './adopt-local-stores.js';
import { lineLogger } from './line-logger.js';
import { serveHubMetrics, type WorkerMessage } from './messages.js';

const RESTART_MIN_MS = 250;
const RESTART_MAX_MS = 30_000;

type Slot = { index: number; env: Record<string, string>; worker: Worker | undefined; restarts: number; backoffMs: number };

/**
 * Each worker accepts from the shared listening socket itself (the kernel's listen backlog is the queue)
 * rather than node:cluster's default on Linux, round-robin through the primary. Round-robin hands a worker
 * one connection at a time and waits for its answer before the next, so while a fleet connects faster than
 * busy workers answer, the primary holds thousands of accepted connections no worker has taken; devices
 * time out their handshakes on them, retry, and the queue fills with dead ones (the 50,000-device bench:
 * 12,208 connected and none more for two minutes, 16,672 descriptors in the primary; bench/probes/
 * worker-accepts.ts, 30,000 devices at 2,000/s: round-robin 2,158 handshake timeouts, none here).
 * The price is a less even spread; a worker at its connection cap answers 503 and the device retries,
 * landing on another. NODE_CLUSTER_SCHED_POLICY, when set, is left to decide.
 */
function chooseSchedulingPolicy(): void {
  if (process.env['NODE_CLUSTER_SCHED_POLICY'] === undefined) cluster.schedulingPolicy = cluster.SCHED_NONE;
}

export async function runPrimary(config: Config): Promise<void> {
  chooseSchedulingPolicy();
  const log = lineLogger(config.logLevel, { role: 'primary', workers: config.workers });
  let influxd: ManagedInfluxd | undefined;
  let nats: ManagedNatsServer | undefined;
  let influxUrl = config.influxUrl;
  if (influxUrl === undefined) {
    try {
      influxd = await startManagedInfluxd({ dataDir: config.dataDir, logger: log });
    } catch (err) {
      return fail(err, 3);
    }
    influxUrl = `${influxd.url}/${MANAGED_DATABASE}`;
  }
  let natsUrl = config.cluster?.servers.join(',');
  if (natsUrl === undefined) {
    try {
      nats = await startManagedNatsServer({ dataDir: config.dataDir, logger: log });
      nats.supervise();
      // What the hub kept in lmdb while it ran as one process becomes the cluster's (once).
      await copyLocalStoresToCluster(config, nats.url, log);
    } catch (err) {
      await influxd?.stop().catch(() => undefined);
      return fail(err, 5);
    }
    natsUrl = nats.url;
  }

  const nodeBase = process.env['PULSEWIRE_NODE_ID']?.trim() || `${os.hostname()}-${process.pid}`;
  const slots: Slot[] = [];
  for (let index = 1; index <= config.workers; index++) {
    const dataDir = path.join(config.dataDir, 'workers', String(index));
    await mkdir(dataDir, { recursive: true });
    slots.push({
      index,
      env: {
        PULSEWIRE_DATA_DIR: dataDir,
        PULSEWIRE_NODE_ID: `${nodeBase}-w${index}`,
        PULSEWIRE_NATS_URL: natsUrl,
        PULSEWIRE_INFLUX_URL: influxUrl,
        // One per hub: a login on one worker holds on the next request, served by another.
        PULSEWIRE_OPERATOR_TOKEN: config.operatorToken,
      },
      worker: undefined,
      restarts: 0,
      backoffMs: RESTART_MIN_MS,
    });
  }

  serveHubMetrics();
  let stopping = false;
  const listening = new Map<number, { address: string; capacity: number | undefined }>();
  let bannerShown = false;
  const fork = (slot: Slot): void => {
    const worker = cluster.fork(slot.env);
    slot.worker = worker;
    worker.on('message', (message: WorkerMessage) => {
      if (message?.type !== 'pulsewire:listening') return;
      listening.set(slot.index, message);
      slot.backoffMs = RESTART_MIN_MS;
      if (slot.restarts > 0) log.info({ worker: slot.index, pid: worker.process.pid, restarts: slot.restarts }, 'worker restarted and listening');
      if (!bannerShown && listening.size === slots.length) {
        bannerShown = true;
        showBanner(config, slots.length, listening, influxd, influxUrl!, nats, natsUrl!);
        // Spools of worker slots this run does not have (fewer workers than last time), or of a one-process run.
        void drainLeftoverSpools(config.dataDir, config.workers, influxUrl!, { logger: log, batchPoints: config.writeBatchPoints });
      }
    });
    worker.on('exit', (code, signal) => {
      if (slot.worker !== worker) return;
      slot.worker = undefined;
      listening.delete(slot.index);
      if (stopping) return;
      const delayMs = slot.backoffMs;
      slot.backoffMs = Math.min(RESTART_MAX_MS, slot.backoffMs * 2);
      slot.restarts++;
      log.error({ worker: slot.index, code, signal, restartInMs: delayMs }, 'worker died; its devices reconnect through the other workers; restarting it');
      setTimeout(() => { if (!stopping) fork(slot); }, delayMs).unref();
    });
  };
  for (const slot of slots) fork(slot);

  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down: draining every worker (1001 to its devices), then nats-server and influxd');
    const deadline = setTimeout(() => {
      log.error({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown took too long; killing what is left');
      for (const slot of slots) slot.worker?.process.kill('SIGKILL');
      void nats?.stop({ signal: 'SIGKILL' });
      process.exit(1);
    }, config.shutdownTimeoutMs);
    await Promise.all(slots.map((slot) => new Promise<void>((resolve) => {
      const worker = slot.worker;
      if (!worker || worker.isDead()) return resolve();
      worker.once('exit', () => resolve());
      worker.process.kill('SIGTERM');
    })));
    await nats?.stop();
    await influxd?.stop();
    clearTimeout(deadline);
    log.info({}, 'stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  if (process.channel) process.once('disconnect', () => void stop('supervisor gone'));
}

function showBanner(
  config: Config, workers: number, listening: Map<number, { address: string; capacity: number | undefined }>,
  influxd: ManagedInfluxd | undefined, influxUrl: string, nats: ManagedNatsServer | undefined, natsUrl: string,
): void {
  const [first] = listening.values();
  const perWorker = first?.capacity ?? deviceCapacity(openFilesLimit());
  const capacity = perWorker === undefined ? undefined : perWorker * workers;
  const lines = bannerLines(config, {
    address: first!.address,
    capacity,
    capacityDetail: perWorker === undefined ? undefined : `${workers} workers x ${perWorker}`,
    influx: influxd ? `${influxd.url} (managed, files in ${config.dataDir}/influxdb)` : redactUrl(influxUrl),
    cluster: `${workers} workers sharing the port, nodes of "${config.cluster?.name ?? 'pulsewire'}" via ${nats ? `a managed nats-server at ${nats.url} (store in ${nats.storeDir})` : `NATS ${natsUrl}`}`,
  });
  process.stdout.write(`${lines.join('\n')}\n`);
}
