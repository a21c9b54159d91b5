/**
 * Scenario `connections` (issue 4, scenario 2): how many mostly idle devices
 * one hub holds, and what each costs. At each step N, device-sim (own
 * process, load core) connects N devices sending one TELEMETRY message per
 * 10 s each, the hub pinging every 5 s; after a settle period the hub's
 * VmRSS is sampled (median) and its CPU measured over two ping intervals.
 * The same fleet then goes to a bare `ws` server (bench/servers/bare-ws.ts,
 * same sweep, same ACK) so the hub's cost per connection is a ratio to what
 * `ws` alone needs, measured in the same run. Each step gets a fresh process
 * (hub or bare server), so the baseline RSS is that process idle.
 *
 * The largest step is bounded by the open-files limit: each connection is a
 * descriptor in the hub and one in device-sim, Node cannot raise the hard
 * limit, and the hub needs some for lmdb, influxd, listeners.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Summary } from '../../device-sim/index.js';
import type { FleetStartArgs, ZombieTimes } from '../lib/fleet-worker.js';
import { BENCH_ENROLLMENT_KEY, startHubProcess } from '../lib/hub-process.js';
import { Remote } from '../lib/ipc.js';
import { describeMachine } from '../lib/machine.js';
import { cpuSeconds, median, memoryStatus, openFilesLimits, pin, placement, sleep, until, vmRssBytes, type Placement } from '../lib/proc.js';
import type { ResultHead, Target } from '../lib/report.js';

const here = path.dirname(fileURLToPath(import.meta.url));
export const FLEET_MODULE = path.join(here, '..', 'lib', 'fleet-worker.ts');
export const BARE_WS_MODULE = path.join(here, '..', 'servers', 'bare-ws.ts');

/** Descriptors kept free under the hard limit: the hub's own (~40: lmdb, influxd pipes, listener, logs) plus margin. */
export const FD_HEADROOM = 500;

export type ConnectionsOptions = {
  /** Device counts; the last is cut to the open-files cap. */
  steps: number[];
  pingIntervalMs: number;
  /** TELEMETRY messages per device per second. */
  rate: number;
  /** New connections per second (device-sim --ramp). */
  ramp: number;
  /** Wait after the last connection before measuring. */
  settleS: number;
  /** CPU and RSS are measured over this long (two ping intervals by default). */
  measureS: number;
  pin: boolean;
  hubEntry?: string[];
  log: (line: string) => void;
};

export const CONNECTIONS_DEFAULTS: ConnectionsOptions = {
  steps: [2_500, 5_000, 10_000, 19_500], pingIntervalMs: 5_000, rate: 0.1, ramp: 2_000, settleS: 10, measureS: 10, pin: true, log: () => {},
};

export type HoldFigures = {
  devices: number;
  connected: number;
  connectSeconds: number;
  rssIdleBytes: number;
  rssHeldBytes: number;
  bytesPerConnection: number;
  /** Where bytesPerConnection goes: each part's (held - idle) / connections held. */
  split: MemorySplit;
  /** The same right after a full GC of the process (idle and held alike): what the connections keep alive, garbage not counted. */
  afterGc: { bytesPerConnection: number; split: MemorySplit };
  /** Mean CPU % of one core over measureS (ping sweeps plus the 0.1 msg/s/device). */
  cpuPercent: number;
  /** Highest CPU % in a 500 ms bin within measureS (a sweep shows up here). */
  cpuPeakPercent: number;
  sim: { sent: number; stored: number; unacknowledged: number; dropped: number; disconnects: number; connectedAtEnd: number; failedConnects: number };
  lost: number;
};

/** What the process reports of its JS memory (process.memoryUsage() names). */
export type JsMemory = { heapUsed: number; heapTotal: number; external: number };

/**
 * Per connection, bytes: RSS as anonymous (JS heap, malloc) and file-backed
 * pages (lmdb's map, code); of the anonymous part, V8's heap (in use,
 * garbage not yet collected included; and as reserved), `external`
 * (Buffers and other memory V8 objects hold outside the heap) and the rest
 * (native: libuv handles, socket buffers, allocator slack).
 */
export type MemorySplit = { anon: number; file: number; heapUsed: number; heapTotal: number; external: number; otherNative: number };

export type ConnectionsStep = { devices: number; hub: HoldFigures; bare: HoldFigures; ratio: number };

export type ConnectionsResult = ResultHead<'connections', ConnectionsOptions> & {
  openFiles: { soft: number; hard: number } | undefined;
  cap: number;
  capReason: string;
  steps: ConnectionsStep[];
};

export function startFleetWorker(place: Placement): Remote {
  const worker = new Remote(FLEET_MODULE);
  pin(worker.pid, place.load, place);
  return worker;
}

type Server = { pid: number; url: string; jsMemory(): Promise<JsMemory>; collectGarbage(): Promise<void>; stop(): Promise<void> };

type MemorySample = { rss: number; anon: number; file: number } & JsMemory;

/** Median of 3 samples 0.5 s apart of /proc and the process's own memory report. */
async function sampleMemory(server: Server): Promise<MemorySample> {
  const samples: MemorySample[] = [];
  for (let i = 0; i < 3; i++) {
    if (i > 0) await sleep(500);
    const { rss, anon, file } = memoryStatus(server.pid);
    samples.push({ rss, anon, file, ...(await server.jsMemory()) });
  }
  const mid = (k: keyof MemorySample) => median(samples.map((s) => s[k]));
  return { rss: mid('rss'), anon: mid('anon'), file: mid('file'), heapUsed: mid('heapUsed'), heapTotal: mid('heapTotal'), external: mid('external') };
}

function splitPerConnection(idle: MemorySample, held: MemorySample, connections: number): MemorySplit {
  const per = (k: keyof MemorySample) => (held[k] - idle[k]) / Math.max(1, connections);
  const anon = per('anon');
  return { anon, file: per('file'), heapUsed: per('heapUsed'), heapTotal: per('heapTotal'), external: per('external'), otherNative: anon - per('heapTotal') - per('external') };
}

/** A full GC, a second for V8 to hand freed pages back, then sampleMemory. */
async function sampleAfterGc(server: Server): Promise<MemorySample> {
  await server.collectGarbage();
  await sleep(1000);
  return sampleMemory(server);
}

/** The hub's JS memory from its /metrics (prom-client's default Node metrics). */
async function hubJsMemory(metrics: () => Promise<Map<string, number>>): Promise<JsMemory> {
  const m = await metrics();
  const get = (name: string) => m.get(`pulsewire_nodejs_${name}`) ?? NaN;
  return { heapUsed: get('heap_size_used_bytes'), heapTotal: get('heap_size_total_bytes'), external: get('external_memory_bytes') };
}

async function hold(server: Server, devices: number, o: ConnectionsOptions, place: Placement, prefix: string): Promise<HoldFigures> {
  await sleep(2000);
  const idle: number[] = [];
  for (let i = 0; i < 3; i++) { idle.push(vmRssBytes(server.pid)); await sleep(500); }
  const idleMemory = await sampleMemory(server);
  const idleAfterGc = await sampleAfterGc(server);
  const worker = startFleetWorker(place);
  try {
    const started = Date.now();
    await worker.call('start', { url: server.url, devices, prefix, enrollmentKey: BENCH_ENROLLMENT_KEY, rate: o.rate, batch: 4, ramp: o.ramp } satisfies FleetStartArgs);
    await until(async () => (await worker.call<{ connected: number }>('snapshot')).connected >= devices, (devices / o.ramp) * 1000 + 60_000, 250);
    const connectSeconds = (Date.now() - started) / 1000;
    const connected = (await worker.call<{ connected: number }>('snapshot')).connected;
    await sleep(o.settleS * 1000);
    const rss: number[] = [];
    const bins: number[] = [];
    const cpu0 = cpuSeconds(server.pid);
    const t0 = Date.now();
    let last = cpu0;
    let lastAt = t0;
    while (Date.now() - t0 < o.measureS * 1000) {
      await sleep(500);
      const c = cpuSeconds(server.pid);
      const now = Date.now();
      bins.push(((c - last) / ((now - lastAt) / 1000)) * 100);
      last = c;
      lastAt = now;
      rss.push(vmRssBytes(server.pid));
    }
    const cpuPercent = ((cpuSeconds(server.pid) - cpu0) / ((Date.now() - t0) / 1000)) * 100;
    // After the CPU window, so scraping the hub's metrics does not count in it.
    const heldMemory = await sampleMemory(server);
    const heldAfterGc = await sampleAfterGc(server);
    const { summary } = await worker.call<{ summary: Summary; zombies: ZombieTimes[] }>('stop');
    const t = summary.telemetry;
    const sim = {
      sent: t.sent, stored: t.stored, unacknowledged: t.unacknowledged, dropped: t.dropped,
      disconnects: Object.entries(summary.connections.disconnects).filter(([k]) => k !== '1000').reduce((n, [, v]) => n + v, 0),
      connectedAtEnd: summary.connections.connectedAtEnd,
      // Handshakes that failed and were retried with backoff (device-sim's ramp outran the hub's accepts).
      failedConnects: Object.values(summary.connections.connectFailures).reduce((n, v) => n + v, 0),
    };
    const rssIdleBytes = median(idle);
    const rssHeldBytes = median(rss);
    return {
      devices, connected, connectSeconds, rssIdleBytes, rssHeldBytes,
      bytesPerConnection: (rssHeldBytes - rssIdleBytes) / Math.max(1, connected),
      split: splitPerConnection(idleMemory, heldMemory, connected),
      afterGc: { bytesPerConnection: (heldAfterGc.rss - idleAfterGc.rss) / Math.max(1, connected), split: splitPerConnection(idleAfterGc, heldAfterGc, connected) },
      cpuPercent, cpuPeakPercent: Math.max(...bins), sim, lost: t.sent - t.stored,
    };
  } finally {
    await worker.close();
  }
}

export async function runConnections(options: Partial<ConnectionsOptions> = {}): Promise<ConnectionsResult> {
  const o: ConnectionsOptions = { ...CONNECTIONS_DEFAULTS, ...options };
  const place = placement(o.pin);
  const machine = describeMachine();
  const openFiles = openFilesLimits();
  const cap = Number.isFinite(openFiles?.hard ?? Infinity) ? openFiles!.hard - FD_HEADROOM : 100_000;
  const capReason = openFiles && Number.isFinite(openFiles.hard)
    ? `open-files hard limit ${openFiles.hard} per process (cannot be raised from inside); each connection is one descriptor in the hub and one in device-sim; the hub needs ~40 more (lmdb, influxd pipes, listener), ${FD_HEADROOM} kept free`
    : 'no open-files limit: capped at the issue\'s 100,000';
  const steps = [...new Set(o.steps.map((n) => Math.min(n, cap)))].sort((a, b) => a - b);
  o.log(`connections: steps ${steps.join(', ')} (cap ${cap}: ${capReason}); ping ${o.pingIntervalMs} ms, ${o.rate} msg/s/device; ${place.note}`);
  const out: ConnectionsStep[] = [];
  for (const n of steps) {
    const hub = await startHubProcess({ entry: o.hubEntry, inspector: true, env: { PULSEWIRE_PING_INTERVAL_MS: String(o.pingIntervalMs) } });
    let hubFigures: HoldFigures;
    try {
      pin(hub.pid, place.subject, place);
      hubFigures = await hold({ pid: hub.pid, url: hub.deviceUrl, jsMemory: () => hubJsMemory(() => hub.metrics()), collectGarbage: () => hub.collectGarbage(), stop: () => hub.stop() }, n, o, place, `c${n}-`);
    } finally {
      await hub.stop();
    }
    const bareProc = new Remote(BARE_WS_MODULE, {}, ['--expose-gc']);
    let bare: HoldFigures;
    try {
      pin(bareProc.pid, place.subject, place);
      const { port } = await bareProc.call<{ port: number }>('start', { pingIntervalMs: o.pingIntervalMs });
      bare = await hold({ pid: bareProc.pid, url: `ws://127.0.0.1:${port}/v1/device`, jsMemory: () => bareProc.call<JsMemory>('memory'), collectGarbage: () => bareProc.call('collectGarbage'), stop: async () => {} }, n, o, place, `b${n}-`);
      await bareProc.call('stop');
    } finally {
      await bareProc.close();
    }
    const step = { devices: n, hub: hubFigures, bare, ratio: hubFigures.bytesPerConnection / bare.bytesPerConnection };
    out.push(step);
    o.log(`  ${n}: hub ${hubFigures.connected} held, ${(hubFigures.bytesPerConnection / 1024).toFixed(1)} KiB/conn (${(hubFigures.afterGc.bytesPerConnection / 1024).toFixed(1)} after a full GC), CPU ${hubFigures.cpuPercent.toFixed(1)} % (peak ${hubFigures.cpuPeakPercent.toFixed(0)} %), lost ${hubFigures.lost}; bare ${(bare.bytesPerConnection / 1024).toFixed(1)} KiB/conn (${(bare.afterGc.bytesPerConnection / 1024).toFixed(1)} after GC), CPU ${bare.cpuPercent.toFixed(1)} %`);
  }
  const result: ConnectionsResult = {
    scenario: 'connections', machine, placement: place, options: (({ log: _l, hubEntry: _h, ...rest }) => rest)(o),
    openFiles, cap, capReason, steps: out, targets: [],
  };
  result.targets = connectionsTargets(result);
  return result;
}

export function connectionsTargets(r: ConnectionsResult): Target[] {
  const top = r.steps.at(-1);
  if (!top) return [];
  const kib = top.hub.bytesPerConnection / 1024;
  return [
    { target: 'at most 16 KiB hub RSS per idle connection', figure: `${kib.toFixed(1)} KiB at ${top.hub.connected} (bare ws ${(top.bare.bytesPerConnection / 1024).toFixed(1)} KiB, ${top.ratio.toFixed(2)} x)`, met: kib <= 16 },
    { target: '50,000 concurrent devices on one hub', figure: `${top.hub.connected} held (cap ${r.cap}: ${r.capReason})`, met: top.hub.connected >= 50_000 },
    { target: 'zero loss at every step (sim: sent = stored, none unACKed, no drops)', figure: r.steps.map((s) => `${s.devices}: lost ${s.hub.lost}, unACKed ${s.hub.sim.unacknowledged}, dropped ${s.hub.sim.disconnects}`).join('; '), met: r.steps.every((s) => s.hub.lost === 0 && s.hub.sim.unacknowledged === 0 && s.hub.sim.disconnects === 0 && s.hub.connected === s.devices) },
  ];
}
