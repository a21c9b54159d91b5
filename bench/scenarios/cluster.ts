/**
 * Scenario `cluster` (issue 16): what cluster mode costs and what it gives on
 * this machine. Four configurations, each with its own processes, its own
 * influxd and (with NATS) its own nats-server:
 *   1. one node without NATS (today's single process: the baseline),
 *   2. one node with NATS (the cost of the hop, as a ratio to 1),
 *   3. two nodes, 4. three nodes.
 * Devices connect to the nodes directly, round-robin (no load balancer in
 * front). All four are set up first and stay up, idle but for the one being
 * measured, so the phases can alternate between them round after round (as
 * `commands` alternates hub and relay): a neighbour's burst on this shared
 * machine then lands on one phase, and the ratios are taken per round.
 *   - held (once, at setup): a device-sim fleet spread over the nodes (one
 *     fleet-worker process per node, practically idle), and whether node 1
 *     lists all of it online; again at the end;
 *   - ingest: the closed-loop driver's own devices, spread the same way,
 *     saturate every node; readings/s into InfluxDB (load start to every
 *     spool empty) and sent = ACKed = stored;
 *   - commands: `POST ...?wait` at a fixed rate through node 1's API to random
 *     devices of the held fleet, so (N-1)/N of them cross to another node;
 *   - dashboard: one dashboard on node 1's /v1/live watching the `cl-dash-*` devices while
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
  /** Times every phase runs on every configuration (the order of configurations turns by one each round). */
  rounds: number;
  /** The held device-sim fleet of each configuration, spread over its nodes. */
  devices: number;
  /** New connections per second of a held fleet, all its nodes together. */
  ramp: number;
  /** The driver's devices for the saturating load, spread over the nodes. */
  ingestDevices: number;
  batch: number;
  window: number;
  ingestSeconds: number;
  /** A saturating load before the first round (fresh nodes run unoptimized code at first). */
  warmupSeconds: number;
  drainTimeoutS: number;
  commandsPerSecond: number;
  commandSeconds: number;
  /** Commands issued in the first warmupS of a commands phase are counted, not in the percentiles. */
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
  configurations: CONFIGURATIONS.map((c) => c.key), rounds: 3, devices: 2_000, ramp: 500, ingestDevices: 600, batch: 10, window: 32,
  ingestSeconds: 15, warmupSeconds: 5, drainTimeoutS: 180, commandsPerSecond: 100, commandSeconds: 10, warmupS: 2,
  dashboardReadingsPerSecond: 2_000, dashboardDevices: 60, dashboardSeconds: 8, pingIntervalMs: 25_000, settleS: 1, pin: true, log: () => {},
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
  /** pulsewire_devices_online of each node once the held fleet was in: the sockets it holds. */
  perNode: number[];
  rssMiB: number[];
  /** After every round: still listed online by node 1, and the fleets' disconnects over the whole run. */
  listedOnlineAtEnd: number;
  disconnects: number;
};

export type IngestFigures = {
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
  /** How the hub closed the dashboard's stream, if it did by the end of the phase (code and reason): why nothing more came. */
  closed?: { code: number; reason: string };
  cpu: CpuShares;
};

export type RoundFigures = { round: number; ingest: IngestFigures; commands: CommandFigures; dashboard: DashboardFigures };

export type ConfigurationResult = Configuration & { cpus: string[]; held: HeldFigures; rounds: RoundFigures[] };

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

/** One configuration, up and holding its fleet, with its own load processes (idle between its phases). */
type Live = {
  c: Configuration;
  cpus: string[];
  nodes: HubProcess[];
  nats: ManagedNatsServer | undefined;
  influxd: ManagedInfluxd;
  databaseUrl: string;
  dirs: string[];
  fleets: Remote[];
  driver: Remote;
  dashDevices: Remote;
  dashboard: Remote;
  held: HeldFigures;
  deviceIds: string[];
  localIds: number;
  meter: CpuMeter;
  /** Every process of this configuration (for the others' "idle configurations" figure). */
  pids(): number[];
};

const HELD_PREFIX = 'cl-held-';
const heldPrefix = (i: number) => `${HELD_PREFIX}n${i + 1}-`;

/** Devices whose id starts with `prefix` that the node's API lists online (pages of 1,000). */
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

async function startNodes(c: Configuration, o: ClusterOptions, place: Placement, cpus: string[], dirs: string[]) {
  const influxDir = mkdtempSync(path.join(os.tmpdir(), 'pulsewire-bench-cluster-influxd-'));
  dirs.push(influxDir);
  const influxd = await startManagedInfluxd({ dataDir: influxDir });
  let nats: ManagedNatsServer | undefined;
  const nodes: HubProcess[] = [];
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
    const started = await Promise.allSettled(Array.from({ length: c.nodes }, (_, i) => startHubProcess({
      entry: o.hubEntry, influxUrl: databaseUrl,
      // The saturating driver's few devices each send far more than a device may (PULSEWIRE_DEVICE_MESSAGE_RATE,
      // 1,000/s): their ACK 4s were counted as sent and not stored, and the harness test failed on any machine fast enough.
      env: { PULSEWIRE_PING_INTERVAL_MS: String(o.pingIntervalMs), PULSEWIRE_DEVICE_MESSAGE_RATE: '1000000', PULSEWIRE_DEVICE_READING_RATE: '100000000', ...clusterEnv(i) },
    })));
    for (const s of started) if (s.status === 'fulfilled') nodes.push(s.value);
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    nodes.forEach((n, i) => pin(n.pid, cpus[i]!, place));
    return { nodes, nats, influxd, databaseUrl };
  } catch (err) {
    await Promise.all(nodes.map((n) => n.stop()));
    await nats?.stop();
    await influxd.stop();
    throw err;
  }
}

async function holdFleet(nodes: HubProcess[], fleets: Remote[], o: ClusterOptions): Promise<{ held: HeldFigures; deviceIds: string[]; localIds: number }> {
  const split = shares(o.devices, nodes.length);
  const started = Date.now();
  await Promise.all(fleets.map((f, i) => f.call('start', {
    url: nodes[i]!.deviceUrl, devices: split[i]!, prefix: heldPrefix(i), enrollmentKey: BENCH_ENROLLMENT_KEY,
    rate: 0.0001, batch: 1, ramp: o.ramp / nodes.length, reconnect: true,
  } satisfies FleetStartArgs)));
  const snaps = () => Promise.all(fleets.map((f) => f.call<FleetSnapshot>('snapshot')));
  const sum = (xs: FleetSnapshot[], key: 'connected' | 'connectFailures') => xs.reduce((n, s) => n + s[key], 0);
  await until(async () => sum(await snaps(), 'connected') >= o.devices, (o.devices / o.ramp) * 1000 + 120_000, 250);
  const connectS = (Date.now() - started) / 1000;
  const ready = await snaps();
  const listedFrom = Date.now();
  let listed = 0;
  await until(async () => (listed = await listedOnline(nodes[0]!, HELD_PREFIX)) >= o.devices, 60_000, 500);
  const listedS = (Date.now() - listedFrom) / 1000;
  const perNode = await Promise.all(nodes.map(async (n) => (await n.metrics()).get('pulsewire_devices_online') ?? NaN));
  o.log(`  held: ${sum(ready, 'connected')} of ${o.devices} connected in ${connectS.toFixed(1)} s, ${listed} listed online by node 1 ${listedS.toFixed(1)} s later; per node ${perNode.join(', ')}`);
  return {
    held: {
      devices: o.devices, connected: sum(ready, 'connected'), connectS, connectFailures: sum(ready, 'connectFailures'), listedOnline: listed, listedS, perNode,
      rssMiB: nodes.map((n) => vmRssBytes(n.pid) / 2 ** 20), listedOnlineAtEnd: NaN, disconnects: NaN,
    },
    deviceIds: split.flatMap((n, i) => fleetIds(heldPrefix(i), n)),
    localIds: split[0]!,
  };
}

/** Starts a configuration and connects everything it needs; its phases then run whenever their turn comes. */
async function setUp(c: Configuration, o: ClusterOptions, place: Placement): Promise<Live> {
  const cores = os.cpus().length;
  const cpus = Array.from({ length: c.nodes }, (_, i) => (place.pinned ? String(i % cores) : 'any'));
  o.log(`cluster: setting up ${c.name} (${c.nodes} node${c.nodes > 1 ? 's' : ''}${c.nats ? ', NATS' : ''}; nodes on CPU ${cpus.join(', ')})`);
  const dirs: string[] = [];
  const { nodes, nats, influxd, databaseUrl } = await startNodes(c, o, place, cpus, dirs);
  const fleets = nodes.map(() => new Remote(FLEET_MODULE));
  const driver = new Remote(DRIVER_MODULE);
  const dashDevices = new Remote(DASHBOARD_WORKER);
  const dashboard = new Remote(DASHBOARD_WORKER);
  const remotes = [...fleets, driver, dashDevices, dashboard];
  const meter = new CpuMeter();
  meter.add('scenario', process.pid);
  nodes.forEach((n, i) => meter.add(`node ${i + 1}`, n.pid));
  meter.add('influxd', () => influxd.pid);
  if (nats) meter.add('nats-server', () => nats.pid);
  meter.add('fleets', fleets.map((f) => f.pid));
  const live: Live = {
    c, cpus, nodes, nats, influxd, databaseUrl, dirs, fleets, driver, dashDevices, dashboard, meter,
    held: undefined as unknown as HeldFigures, deviceIds: [], localIds: 0,
    pids: () => [...nodes.map((n) => n.pid), influxd.pid, nats?.pid, ...remotes.map((r) => r.pid)].filter((p): p is number => p !== undefined),
  };
  try {
    Object.assign(live, await holdFleet(nodes, fleets, o));
    const ingestSplit = shares(o.ingestDevices, nodes.length);
    for (const [i, n] of nodes.entries()) {
      await driver.call<ConnectResult>('connect', { url: n.deviceUrl, devices: ingestSplit[i]!, prefix: `cl-ingest-n${i + 1}-`, enrollmentKey: BENCH_ENROLLMENT_KEY });
    }
    // Ids say where a device is: its readings reach node 1's dashboard locally, or through NATS.
    const dashSplit = shares(o.dashboardDevices, nodes.length);
    for (const [i, n] of nodes.entries()) {
      await dashDevices.call('connectFleet', { url: n.deviceUrl, count: dashSplit[i]!, enrollmentKey: BENCH_ENROLLMENT_KEY, prefix: i === 0 ? 'cl-dash-local-' : `cl-dash-remote-n${i + 1}-` });
    }
    await dashboard.call('openDashboards', {
      url: `${nodes[0]!.baseUrl.replace(/^http/, 'ws')}/v1/live`, token: BENCH_OPERATOR_TOKEN, count: 1, stall: false, groups: ['cl-dash-local-', 'cl-dash-remote-'],
      // Only the dashboard load's devices (by prefix, so node 1 still takes every device's readings from NATS): the
      // warm-up and ingest phases saturate the nodes, and a dashboard sent all of that was closed with 1013.
      devices: ['cl-dash-*'],
    });
    // Warm-up: fresh nodes run unoptimized code at first; these readings are not counted (their names differ).
    await driver.call<RunResult>('run', { mode: 'saturate', batch: o.batch, seconds: o.warmupSeconds, names: 'w', window: o.window });
    await dashDevices.call('load', { seconds: Math.min(2, o.dashboardSeconds / 2), readingsPerSecond: o.dashboardReadingsPerSecond, batch: o.batch });
    return live;
  } catch (err) {
    await tearDown(live);
    throw err;
  }
}

async function tearDown(l: Live): Promise<void> {
  for (const r of [...l.fleets, l.driver, l.dashDevices, l.dashboard]) await r.close();
  await Promise.all(l.nodes.map((n) => n.stop()));
  await l.nats?.stop();
  await l.influxd.stop();
  for (const d of l.dirs) rmSync(d, { recursive: true, force: true });
}

const spoolsEmpty = (l: Live, timeoutS: number) =>
  until(async () => (await Promise.all(l.nodes.map(async (n) => (await n.metrics()).get('pulsewire_spool_entries')))).every((e) => e === 0), timeoutS * 1000, 100);
const pointsWritten = async (l: Live) =>
  (await Promise.all(l.nodes.map(async (n) => (await n.metrics()).get('pulsewire_points_written_total') ?? 0))).reduce((a, b) => a + b, 0);

async function ingest(l: Live, round: number, o: ClusterOptions): Promise<IngestFigures> {
  await spoolsEmpty(l, o.drainTimeoutS);
  const written0 = await pointsWritten(l);
  const names = `r${round}b`;
  l.meter.add('driver', l.driver.pid);
  const mark = l.meter.mark();
  const run = await l.driver.call<RunResult>('run', { mode: 'saturate', batch: o.batch, seconds: o.ingestSeconds, names, window: o.window });
  const drained = await spoolsEmpty(l, o.drainTimeoutS);
  const drainedAt = Date.now();
  const cpu = l.meter.since(mark);
  l.meter.remove('driver');
  const written = (await pointsWritten(l)) - written0;
  const stored = await countStored(l.databaseUrl, names);
  const perMillion = (cpuS: number | undefined) => (run.readingsAcked > 0 && cpuS !== undefined ? cpuS / (run.readingsAcked / 1e6) : NaN);
  const nodesCpuS = l.nodes.reduce((s, _n, i) => s + (cpu.seconds[`node ${i + 1}`] ?? NaN), 0);
  const figures: IngestFigures = {
    seconds: run.seconds, readingsSent: run.readingsSent, readingsAcked: run.readingsAcked, acks: run.acks,
    unacknowledged: run.unacknowledged, stored, lost: run.readingsSent - stored,
    ackedPerSecond: (run.ackedInWindow * o.batch) / run.seconds,
    influxPointsPerSecond: written / ((drainedAt - run.startedAt) / 1000),
    drainS: (drainedAt - run.stoppedAt) / 1000, drained,
    cpuPerMillion: { nodes: perMillion(nodesCpuS), nats: perMillion(cpu.seconds['nats-server']), influxd: perMillion(cpu.seconds.influxd) },
    cpu,
  };
  o.log(`  round ${round}, ${l.c.key}, ingest: ${Math.round(figures.influxPointsPerSecond)} readings/s into InfluxDB (${Math.round(figures.ackedPerSecond)} ACKed), sent ${run.readingsSent}, stored ${stored}, lost ${figures.lost}; CPU ${CpuMeter.line(cpu)}`);
  if (!drained) o.log(`  a spool did not drain within ${o.drainTimeoutS} s`);
  return figures;
}

async function commands(l: Live, load: Remote, round: number, o: ClusterOptions): Promise<CommandFigures> {
  const answered = async () => (await Promise.all(l.fleets.map((f) => f.call<FleetSnapshot>('snapshot')))).reduce((n, s) => n + s.commandsAnswered, 0);
  const before = await answered();
  l.meter.add('command load', load.pid);
  const mark = l.meter.mark();
  const args: CommandLoadArgs = {
    baseUrl: l.nodes[0]!.baseUrl, token: BENCH_OPERATOR_TOKEN, deviceIds: l.deviceIds, commandsPerSecond: o.commandsPerSecond, seconds: o.commandSeconds,
    waitS: 30, name: 'echo', args: { delayMs: 0 }, warmupS: o.warmupS, maxSockets: 500,
  };
  const result = await load.call<CommandLoadResult>('run', args);
  const cpu = l.meter.since(mark);
  l.meter.remove('command load');
  const figures: CommandFigures = { load: result, crossNodeShare: 1 - l.localIds / l.deviceIds.length, answered: (await answered()) - before, cpu };
  const rt = result.roundTripMs;
  o.log(`  round ${round}, ${l.c.key}, commands: ${result.issued} issued through node 1, ${result.finals.succeeded ?? 0} succeeded, p50 ${rt.p50.toFixed(1)} ms, p99 ${rt.p99.toFixed(1)} ms; CPU ${CpuMeter.line(cpu)}`);
  return figures;
}

type DashLoad = { scheduled: number; sent: number; acked: number; ack: Percentiles; unacked: number };
type DashStats = { latency: Percentiles; groups: Record<string, Percentiles>; frames: number; conflated: number; closed: ({ code: number; reason: string } | undefined)[] };

async function dashboard(l: Live, round: number, o: ClusterOptions): Promise<DashboardFigures> {
  await l.dashboard.call('dashboardStats');
  l.meter.add('dashboard devices', l.dashDevices.pid);
  l.meter.add('dashboard', l.dashboard.pid);
  const mark = l.meter.mark();
  const load = await l.dashDevices.call<DashLoad>('load', { seconds: o.dashboardSeconds, readingsPerSecond: o.dashboardReadingsPerSecond, batch: o.batch });
  const cpu = l.meter.since(mark);
  l.meter.remove('dashboard devices');
  l.meter.remove('dashboard');
  const stats = await l.dashboard.call<DashStats>('dashboardStats');
  const nan: Percentiles = { count: 0, p50: NaN, p99: NaN, max: NaN };
  const local = stats.groups['cl-dash-local-'] ?? nan;
  const remote = stats.groups['cl-dash-remote-'] ?? nan;
  const figures: DashboardFigures = {
    readingsSent: load.sent * o.batch, readingsAcked: load.acked * o.batch, unacked: load.unacked + (load.scheduled - load.sent), ack: load.ack,
    // Counted by group: the dashboard watches every `cl-dash-` device, and only this load's readings count.
    received: local.count + remote.count, latency: stats.latency, local, remote, conflated: stats.conflated, cpu,
    ...(stats.closed[0] ? { closed: stats.closed[0] } : {}),
  };
  o.log(`  round ${round}, ${l.c.key}, dashboard: ${figures.received} of ${figures.readingsAcked} readings ACKed reached it, p99 ${figures.latency.p99} ms (local ${figures.local.p99}, remote ${figures.remote.p99})${figures.closed ? `; the hub closed its stream: ${figures.closed.code} ${figures.closed.reason}` : ''}; CPU ${CpuMeter.line(cpu)}`);
  return figures;
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
  o.log(`cluster: ${chosen.map((c) => c.name).join(', ')}; ${o.rounds} rounds; ${o.devices} held devices, ${o.ingestDevices} driver devices for ${o.ingestSeconds} s, ${o.commandsPerSecond} commands/s for ${o.commandSeconds} s, ${o.dashboardReadingsPerSecond} readings/s to a dashboard for ${o.dashboardSeconds} s; ${place.note}`);
  const lives: Live[] = [];
  const load = new Remote(LOAD_MODULE);
  const results = new Map<string, RoundFigures[]>(chosen.map((c) => [c.key, []]));
  try {
    for (const c of chosen) lives.push(await setUp(c, o, place));
    // Each meter also sees the other configurations, idle: their share is ours, not the neighbours'.
    for (const l of lives) l.meter.add('idle configurations', () => lives.filter((x) => x !== l).flatMap((x) => x.pids()));
    for (let round = 1; round <= o.rounds; round++) {
      // The order turns by one each round, so no configuration is always first after a pause or last after a long phase.
      const order = lives.map((_, i) => lives[(i + round - 1) % lives.length]!);
      const figures = new Map<Live, Partial<RoundFigures>>(order.map((l) => [l, { round }]));
      for (const l of order) {
        figures.get(l)!.ingest = await ingest(l, round, o);
        await sleep(o.settleS * 1000);
      }
      for (const l of order) {
        figures.get(l)!.commands = await commands(l, load, round, o);
        await sleep(o.settleS * 1000);
      }
      for (const l of order) {
        figures.get(l)!.dashboard = await dashboard(l, round, o);
        await sleep(o.settleS * 1000);
      }
      for (const l of lives) results.get(l.c.key)!.push(figures.get(l) as RoundFigures);
    }
    for (const l of lives) {
      l.held.listedOnlineAtEnd = await listedOnline(l.nodes[0]!, HELD_PREFIX);
      l.held.disconnects = (await Promise.all(l.fleets.map((f) => f.call<FleetSnapshot>('snapshot')))).reduce((n, s) => n + s.disconnects, 0);
      for (const f of l.fleets) await f.call('stop');
    }
  } finally {
    await load.close();
    for (const l of lives) await tearDown(l);
  }
  const configurations: ConfigurationResult[] = lives.map((l) => ({ ...l.c, cpus: l.cpus, held: l.held, rounds: results.get(l.c.key)! }));
  const { log: _l, hubEntry: _h, ...recorded } = o;
  const result: ClusterResult = { scenario: 'cluster', machine, placement: place, options: recorded, configurations, targets: [] };
  result.targets = clusterTargets(result);
  return result;
}
