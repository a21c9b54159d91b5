/**
 * Scenario `cluster` (issue 16): what cluster mode costs and what it gives on
 * this machine. Four configurations, one after the other, each on fresh
 * processes, a fresh influxd and (with NATS) a fresh nats-server:
 *   1. one node without NATS (today's single process: the baseline),
 *   2. one node with NATS (the cost of the hop, as a ratio to 1),
 *   3. two nodes, 4. three nodes.
 * Devices connect to the nodes directly, round-robin (no load balancer in
 * front). In each configuration, in this order:
 *   - held: a device-sim fleet (one fleet-worker process per node, practically
 *     idle) spread over the nodes, and whether node 1 lists all of it online;
 *   - ingest: the closed-loop driver's own devices, spread the same way,
 *     saturate every node; readings/s into InfluxDB (load start to every
 *     spool empty) and sent = ACKed = stored;
 *   - commands: `POST ...?wait` at a fixed rate through node 1's API to random
 *     devices of the held fleet, so (N-1)/N of them cross to another node;
 *   - dashboard: one dashboard on node 1's /v1/live watching everything while
 *     a fixed load of readings comes in on every node; device-to-dashboard
 *     time of the devices on node 1 and of those elsewhere (through NATS).
 * CPU of every process is taken over each phase (and the machine's, which
 * includes the neighbours), so what limits the scaling is a measured figure.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startManagedNatsServer, type ManagedNatsServer } from '../../src/cluster/managed-nats-server.js';
import { startManagedInfluxd, type ManagedInfluxd } from '../../src/storage/managed-influxd.js';
import type { CommandLoadArgs, CommandLoadResult } from '../lib/command-load.js';
import type { ConnectResult, RunResult } from '../lib/driver.js';
import type { FleetSnapshot, FleetStartArgs } from '../lib/fleet-worker.js';
import { BENCH_ENROLLMENT_KEY, BENCH_OPERATOR_TOKEN, countStored, startHubProcess, type HubProcess } from '../lib/hub-process.js';
import { Remote } from '../lib/ipc.js';
import { describeMachine } from '../lib/machine.js';
import { CpuMeter, pin, placement, sleep, until, vmRssBytes, type CpuShares, type Placement } from '../lib/proc.js';
import type { ResultHead } from '../lib/report.js';
import { clusterTargets } from './cluster-report.js';
import { fleetIds } from './commands.js';
import { FLEET_MODULE } from './connections.js';
import { DRIVER_MODULE } from './ceilings.js';
import type { Percentiles } from './dashboard-worker.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const LOAD_MODULE = path.join(here, '..', 'lib', 'command-load.ts');
const DASHBOARD_WORKER = path.join(here, 'dashboard-worker.ts');

export type Configuration = { key: string; name: string; nodes: number; nats: boolean };
export const CONFIGURATIONS: Configuration[] = [
  { key: '1', name: 'one node, no NATS', nodes: 1, nats: false },
  { key: '1+nats', name: 'one node with NATS', nodes: 1, nats: true },
  { key: '2', name: 'two nodes', nodes: 2, nats: true },
  { key: '3', name: 'three nodes', nodes: 3, nats: true },
];

export type ClusterOptions = {
  /** Which configurations, by key (default all four, in order). */
  configurations: string[];
  /** The held device-sim fleet, spread over the nodes. */
  devices: number;
  /** New connections per second of the held fleet, all nodes together. */
  ramp: number;
  /** The driver's devices for the saturating load, spread over the nodes. */
  ingestDevices: number;
  batch: number;
  window: number;
  ingestSeconds: number;
  drainTimeoutS: number;
  commandsPerSecond: number;
  commandSeconds: number;
  warmupS: number;
  /** Readings per second (fleet-wide, in messages of `batch`) while the dashboard watches. */
  dashboardReadingsPerSecond: number;
  dashboardDevices: number;
  dashboardSeconds: number;
  pingIntervalMs: number;
  /** Pause between phases, so one phase's tail (writes, GC) does not land in the next. */
  settleS: number;
  pin: boolean;
  hubEntry?: string[];
  log: (line: string) => void;
};

export const CLUSTER_DEFAULTS: ClusterOptions = {
  configurations: CONFIGURATIONS.map((c) => c.key), devices: 2_000, ramp: 500, ingestDevices: 600, batch: 10, window: 32,
  ingestSeconds: 30, drainTimeoutS: 180, commandsPerSecond: 100, commandSeconds: 20, warmupS: 2,
  dashboardReadingsPerSecond: 2_000, dashboardDevices: 60, dashboardSeconds: 15, pingIntervalMs: 25_000, settleS: 2, pin: true, log: () => {},
};

export type HeldFigures = {
  devices: number;
  /** Open on the fleets' side once the ramp was done, and how long that took. */
  connected: number;
  connectS: number;
  connectFailures: number;
  /** Listed online by node 1's API (the cluster's view), and how long after the fleet was connected. */
  listedOnline: number;
  listedS: number;
  /** pulsewire_devices_online of each node: the sockets it holds. */
  perNode: number[];
  rssMiB: number[];
  /** At the end of the configuration: still listed online by node 1, and the fleets' disconnects over every phase. */
  listedOnlineAtEnd: number;
  disconnects: number;
};

export type IngestFigures = {
  devices: number;
  seconds: number;
  readingsSent: number;
  readingsAcked: number;
  acks: Record<string, number>;
  unacknowledged: number;
  stored: number;
  lost: number;
  ackedPerSecond: number;
  /** Points InfluxDB confirmed to the nodes, from load start until every spool was empty, per second. */
  influxPointsPerSecond: number;
  drainS: number;
  drained: boolean;
  /** CPU-s per million readings ACKed, load start to spools empty: the nodes together, nats-server, influxd. */
  cpuPerMillion: { nodes: number; nats: number; influxd: number };
  cpu: CpuShares;
};

export type CommandFigures = { load: CommandLoadResult; crossNodeShare: number; answered: number; cpu: CpuShares };

export type DashboardFigures = {
  readingsSent: number;
  readingsAcked: number;
  unacked: number;
  ack: Percentiles;
  /** This load's readings that reached the dashboard; device-to-dashboard times of every reading, of devices on node 1, of devices on the others. */
  received: number;
  latency: Percentiles;
  local: Percentiles;
  remote: Percentiles;
  conflated: number;
  cpu: CpuShares;
};

export type ConfigurationResult = Configuration & { cpus: string[]; held: HeldFigures; ingest: IngestFigures; commands: CommandFigures; dashboard: DashboardFigures };

export type ClusterResult = ResultHead<'cluster', ClusterOptions> & { configurations: ConfigurationResult[] };

/** Devices per node when `total` go round-robin to `nodes` nodes. */
export function shares(total: number, nodes: number): number[] {
  return Array.from({ length: nodes }, (_, i) => Math.floor((total + nodes - 1 - i) / nodes));
}

/** On two cores: node i on CPU i mod cores; nats-server, influxd and every load process unpinned. */
function nodePlacement(wanted: boolean): Placement {
  const base = placement(wanted);
  if (!base.pinned) return base;
  return {
    ...base, subject: 'node i on CPU i mod cores', load: 'any',
    note: `taskset: node i on CPU (i mod ${os.cpus().length}): one node on CPU 0, two nodes on CPU 0 and 1, three nodes on CPU 0, 1 and 0 (nodes 1 and 3 share); nats-server, influxd, driver, fleets, command load and dashboard processes unpinned (they share both cores with the nodes)`,
  };
}

type Cluster = { nodes: HubProcess[]; nats: ManagedNatsServer | undefined; influxd: ManagedInfluxd; databaseUrl: string; dirs: string[] };

async function startCluster(c: Configuration, o: ClusterOptions, place: Placement, cpus: string[]): Promise<Cluster> {
  const influxDir = mkdtempSync(path.join(os.tmpdir(), 'pulsewire-bench-cluster-influxd-'));
  const dirs = [influxDir];
  const influxd = await startManagedInfluxd({ dataDir: influxDir });
  let nats: ManagedNatsServer | undefined;
  try {
    if (c.nats) {
      const natsDir = mkdtempSync(path.join(os.tmpdir(), 'pulsewire-bench-cluster-nats-'));
      dirs.push(natsDir);
      nats = await startManagedNatsServer({ dataDir: natsDir });
    }
    const databaseUrl = `${influxd.url}/pulsewire`;
    const clusterEnv = (i: number): Record<string, string> => (nats ? {
      PULSEWIRE_NATS_URL: nats.url, PULSEWIRE_CLUSTER_NAME: 'bench', PULSEWIRE_NODE_ID: `node-${i + 1}`,
    } : {});
    // Started together, as an operator's deployment would: the first JetStream setup races are part of the run.
    const nodes = await Promise.all(Array.from({ length: c.nodes }, (_, i) => startHubProcess({
      entry: o.hubEntry, influxUrl: databaseUrl, env: { PULSEWIRE_PING_INTERVAL_MS: String(o.pingIntervalMs), ...clusterEnv(i) },
    })));
    nodes.forEach((n, i) => pin(n.pid, cpus[i]!, place));
    return { nodes, nats, influxd, databaseUrl, dirs };
  } catch (err) {
    await nats?.stop();
    await influxd.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    throw err;
  }
}

async function stopCluster(k: Cluster): Promise<void> {
  await Promise.all(k.nodes.map((n) => n.stop()));
  await k.nats?.stop();
  await k.influxd.stop();
  for (const d of k.dirs) rmSync(d, { recursive: true, force: true });
}

/** Devices whose id starts with `prefix` that node 1's API lists online (pages of 1,000). */
async function listedOnline(node: HubProcess, prefix: string): Promise<number> {
  let count = 0;
  let cursor: string | undefined;
  do {
    const query = new URLSearchParams({ online: 'true', prefix, limit: '1000', ...(cursor ? { cursor } : {}) });
    const res = await fetch(`${node.baseUrl}/v1/devices?${query}`, { headers: { authorization: `Bearer ${BENCH_OPERATOR_TOKEN}` } });
    if (!res.ok) throw new Error(`GET /v1/devices on ${node.baseUrl}: HTTP ${res.status}`);
    const page = (await res.json()) as { devices: unknown[]; nextCursor: string | null };
    count += page.devices.length;
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return count;
}

const HELD_PREFIX = 'cl-held-';
const heldPrefix = (i: number) => `${HELD_PREFIX}n${i + 1}-`;

async function holdFleet(k: Cluster, fleets: Remote[], o: ClusterOptions): Promise<{ figures: HeldFigures; deviceIds: string[]; localIds: number }> {
  const split = shares(o.devices, k.nodes.length);
  const started = Date.now();
  await Promise.all(fleets.map((f, i) => f.call('start', {
    url: k.nodes[i]!.deviceUrl, devices: split[i]!, prefix: heldPrefix(i), enrollmentKey: BENCH_ENROLLMENT_KEY,
    rate: 0.0001, batch: 1, ramp: o.ramp / k.nodes.length, reconnect: true,
  } satisfies FleetStartArgs)));
  const snaps = () => Promise.all(fleets.map((f) => f.call<FleetSnapshot>('snapshot')));
  const sum = (xs: FleetSnapshot[], key: 'connected' | 'connectFailures' | 'disconnects') => xs.reduce((n, s) => n + s[key], 0);
  await until(async () => sum(await snaps(), 'connected') >= o.devices, (o.devices / o.ramp) * 1000 + 120_000, 250);
  const connectS = (Date.now() - started) / 1000;
  const ready = await snaps();
  const listedFrom = Date.now();
  let listed = 0;
  await until(async () => (listed = await listedOnline(k.nodes[0]!, HELD_PREFIX)) >= o.devices, 60_000, 500);
  const listedS = (Date.now() - listedFrom) / 1000;
  const perNode = await Promise.all(k.nodes.map(async (n) => (await n.metrics()).get('pulsewire_devices_online') ?? NaN));
  o.log(`  held: ${sum(ready, 'connected')} of ${o.devices} connected in ${connectS.toFixed(1)} s, ${listed} listed online by node 1 ${listedS.toFixed(1)} s later; per node ${perNode.join(', ')}`);
  return {
    figures: {
      devices: o.devices, connected: sum(ready, 'connected'), connectS, connectFailures: sum(ready, 'connectFailures'), listedOnline: listed, listedS, perNode,
      rssMiB: k.nodes.map((n) => vmRssBytes(n.pid) / 2 ** 20), listedOnlineAtEnd: NaN, disconnects: NaN,
    },
    deviceIds: split.flatMap((n, i) => fleetIds(heldPrefix(i), n)),
    localIds: split[0]!,
  };
}

const spoolsEmpty = (k: Cluster, timeoutS: number) =>
  until(async () => (await Promise.all(k.nodes.map(async (n) => (await n.metrics()).get('pulsewire_spool_entries')))).every((e) => e === 0), timeoutS * 1000, 100);
const pointsWritten = async (k: Cluster) =>
  (await Promise.all(k.nodes.map(async (n) => (await n.metrics()).get('pulsewire_points_written_total') ?? 0))).reduce((a, b) => a + b, 0);

async function ingest(k: Cluster, meter: CpuMeter, o: ClusterOptions): Promise<IngestFigures> {
  const driver = new Remote(DRIVER_MODULE);
  meter.add('driver', driver.pid);
  try {
    const split = shares(o.ingestDevices, k.nodes.length);
    for (const [i, n] of k.nodes.entries()) {
      await driver.call<ConnectResult>('connect', { url: n.deviceUrl, devices: split[i]!, prefix: `cl-ingest-n${i + 1}-`, enrollmentKey: BENCH_ENROLLMENT_KEY });
    }
    await spoolsEmpty(k, o.drainTimeoutS);
    const written0 = await pointsWritten(k);
    const mark = meter.mark();
    const run = await driver.call<RunResult>('run', { mode: 'saturate', batch: o.batch, seconds: o.ingestSeconds, names: 'b', window: o.window });
    const drained = await spoolsEmpty(k, o.drainTimeoutS);
    const drainedAt = Date.now();
    const cpu = meter.since(mark);
    const written = (await pointsWritten(k)) - written0;
    const stored = await countStored(k.databaseUrl, 'b');
    await driver.call('close');
    const perMillion = (cpuS: number) => (run.readingsAcked > 0 ? cpuS / (run.readingsAcked / 1e6) : NaN);
    const nodesCpuS = k.nodes.reduce((s, _n, i) => s + (cpu.seconds[`node ${i + 1}`] ?? 0), 0);
    const figures: IngestFigures = {
      devices: o.ingestDevices, seconds: run.seconds, readingsSent: run.readingsSent, readingsAcked: run.readingsAcked, acks: run.acks,
      unacknowledged: run.unacknowledged, stored, lost: run.readingsSent - stored,
      ackedPerSecond: (run.ackedInWindow * o.batch) / run.seconds,
      influxPointsPerSecond: written / ((drainedAt - run.startedAt) / 1000),
      drainS: (drainedAt - run.stoppedAt) / 1000, drained,
      cpuPerMillion: { nodes: perMillion(nodesCpuS), nats: perMillion(cpu.seconds['nats-server'] ?? NaN), influxd: perMillion(cpu.seconds.influxd ?? NaN) },
      cpu,
    };
    o.log(`  ingest: ${Math.round(figures.ackedPerSecond)} readings/s ACKed, ${Math.round(figures.influxPointsPerSecond)} points/s into InfluxDB, sent ${run.readingsSent}, stored ${stored}, lost ${figures.lost}; CPU ${CpuMeter.line(cpu)}`);
    if (!drained) o.log(`  a spool did not drain within ${o.drainTimeoutS} s`);
    return figures;
  } finally {
    await driver.close();
    meter.remove('driver');
  }
}

async function commands(k: Cluster, fleets: Remote[], ids: { all: string[]; local: number }, meter: CpuMeter, o: ClusterOptions): Promise<CommandFigures> {
  const load = new Remote(LOAD_MODULE);
  meter.add('command load', load.pid);
  try {
    const answered = async () => (await Promise.all(fleets.map((f) => f.call<FleetSnapshot>('snapshot')))).reduce((n, s) => n + s.commandsAnswered, 0);
    const before = await answered();
    const mark = meter.mark();
    const args: CommandLoadArgs = {
      baseUrl: k.nodes[0]!.baseUrl, token: BENCH_OPERATOR_TOKEN, deviceIds: ids.all, commandsPerSecond: o.commandsPerSecond, seconds: o.commandSeconds,
      waitS: 30, name: 'echo', args: { delayMs: 0 }, warmupS: o.warmupS, maxSockets: 500,
    };
    const result = await load.call<CommandLoadResult>('run', args);
    const cpu = meter.since(mark);
    const figures: CommandFigures = { load: result, crossNodeShare: 1 - ids.local / ids.all.length, answered: (await answered()) - before, cpu };
    const rt = result.roundTripMs;
    o.log(`  commands: ${result.issued} issued at ${o.commandsPerSecond}/s through node 1, ${result.finals.succeeded ?? 0} succeeded, p50 ${rt.p50.toFixed(1)} ms, p99 ${rt.p99.toFixed(1)} ms; CPU ${CpuMeter.line(cpu)}`);
    return figures;
  } finally {
    await load.close();
    meter.remove('command load');
  }
}

type DashLoad = { scheduled: number; sent: number; acked: number; ack: Percentiles; unacked: number };
type DashStats = { latency: Percentiles; groups: Record<string, Percentiles>; frames: number; conflated: number };

async function dashboard(k: Cluster, meter: CpuMeter, o: ClusterOptions): Promise<DashboardFigures> {
  const devices = new Remote(DASHBOARD_WORKER);
  const watcher = new Remote(DASHBOARD_WORKER);
  meter.add('dashboard devices', devices.pid);
  meter.add('dashboard', watcher.pid);
  try {
    const split = shares(o.dashboardDevices, k.nodes.length);
    // Ids say where a device is: its readings reach node 1's dashboard locally, or through NATS.
    for (const [i, n] of k.nodes.entries()) {
      await devices.call('connectFleet', { url: n.deviceUrl, count: split[i]!, enrollmentKey: BENCH_ENROLLMENT_KEY, prefix: i === 0 ? 'cl-dash-local-' : `cl-dash-remote-n${i + 1}-` });
    }
    await watcher.call('openDashboards', {
      url: `${k.nodes[0]!.baseUrl.replace(/^http/, 'ws')}/v1/live`, token: BENCH_OPERATOR_TOKEN, count: 1, stall: false, groups: ['cl-dash-local-', 'cl-dash-remote-'],
    });
    const loadArgs = { seconds: o.dashboardSeconds, readingsPerSecond: o.dashboardReadingsPerSecond, batch: o.batch };
    await devices.call('load', { ...loadArgs, seconds: Math.min(3, o.dashboardSeconds / 2) });
    await watcher.call('dashboardStats');
    const mark = meter.mark();
    const load = await devices.call<DashLoad>('load', loadArgs);
    const cpu = meter.since(mark);
    const stats = await watcher.call<DashStats>('dashboardStats');
    const nan: Percentiles = { count: 0, p50: NaN, p99: NaN, max: NaN };
    const local = stats.groups['cl-dash-local-'] ?? nan;
    const remote = stats.groups['cl-dash-remote-'] ?? nan;
    const figures: DashboardFigures = {
      readingsSent: load.sent * o.batch, readingsAcked: load.acked * o.batch, unacked: load.unacked + (load.scheduled - load.sent), ack: load.ack,
      // Counted by group: the held fleet's rare readings reach the dashboard too (it watches everything) and are not this load's.
      received: local.count + remote.count, latency: stats.latency, local, remote,
      conflated: stats.conflated, cpu,
    };
    o.log(`  dashboard: ${figures.received} of ${figures.readingsAcked} readings ACKed reached it, p99 ${figures.latency.p99} ms (local ${figures.local.p99}, remote ${figures.remote.p99}); CPU ${CpuMeter.line(cpu)}`);
    return figures;
  } finally {
    await watcher.close();
    await devices.close();
    meter.remove('dashboard');
    meter.remove('dashboard devices');
  }
}

async function runConfiguration(c: Configuration, o: ClusterOptions, place: Placement): Promise<ConfigurationResult> {
  const cores = os.cpus().length;
  const cpus = Array.from({ length: c.nodes }, (_, i) => (place.pinned ? String(i % cores) : 'any'));
  o.log(`cluster: ${c.name} (${c.nodes} node${c.nodes > 1 ? 's' : ''}${c.nats ? ', NATS' : ''}; nodes on CPU ${cpus.join(', ')})`);
  const k = await startCluster(c, o, place, cpus);
  const meter = new CpuMeter();
  meter.add('scenario', process.pid);
  k.nodes.forEach((n, i) => meter.add(`node ${i + 1}`, n.pid));
  meter.add('influxd', () => k.influxd.pid);
  if (k.nats) meter.add('nats-server', () => k.nats!.pid);
  const fleets = k.nodes.map(() => new Remote(FLEET_MODULE));
  meter.add('fleets', fleets.map((f) => f.pid));
  try {
    const held = await holdFleet(k, fleets, o);
    await sleep(o.settleS * 1000);
    const ingestFigures = await ingest(k, meter, o);
    await sleep(o.settleS * 1000);
    const commandFigures = await commands(k, fleets, { all: held.deviceIds, local: held.localIds }, meter, o);
    await sleep(o.settleS * 1000);
    const dashboardFigures = await dashboard(k, meter, o);
    held.figures.listedOnlineAtEnd = await listedOnline(k.nodes[0]!, HELD_PREFIX);
    held.figures.disconnects = (await Promise.all(fleets.map((f) => f.call<FleetSnapshot>('snapshot')))).reduce((n, s) => n + s.disconnects, 0);
    for (const f of fleets) await f.call('stop');
    return { ...c, cpus, held: held.figures, ingest: ingestFigures, commands: commandFigures, dashboard: dashboardFigures };
  } finally {
    for (const f of fleets) await f.close();
    await stopCluster(k);
  }
}

export async function runCluster(options: Partial<ClusterOptions> = {}): Promise<ClusterResult> {
  const o: ClusterOptions = { ...CLUSTER_DEFAULTS, ...options };
  const chosen = o.configurations.map((key) => {
    const c = CONFIGURATIONS.find((x) => x.key === key);
    if (!c) throw new Error(`unknown cluster configuration "${key}"; known: ${CONFIGURATIONS.map((x) => x.key).join(', ')}`);
    return c;
  });
  const place = nodePlacement(o.pin);
  const machine = describeMachine();
  o.log(`cluster: ${chosen.map((c) => c.name).join(', ')}; ${o.devices} held devices, ${o.ingestDevices} driver devices for ${o.ingestSeconds} s, ${o.commandsPerSecond} commands/s for ${o.commandSeconds} s, ${o.dashboardReadingsPerSecond} readings/s to a dashboard for ${o.dashboardSeconds} s; ${place.note}`);
  const configurations: ConfigurationResult[] = [];
  for (const c of chosen) configurations.push(await runConfiguration(c, o, place));
  const { log: _l, hubEntry: _h, ...recorded } = o;
  const result: ClusterResult = { scenario: 'cluster', machine, placement: place, options: recorded, configurations, targets: [] };
  result.targets = clusterTargets(result);
  return result;
}
