/**
 * Scenario `soak` (issue 18): the hub for 30 minutes (`minutes`) at half its
 * ingest maximum, probed first in the same run (latency's saturating probe,
 * on a hub process of its own so the soak's hub starts clean),
 * with device-sim's chaos: 5% of the devices flap (drop their TCP connection
 * at random, every ~20 s on average, and come back with the protocol's
 * backoff) and 1% are zombies (never answer a ping, keep TCP open, come back
 * after the hub drops them). Every device sends paced TELEMETRY in batches
 * of 10, the share of the maximum spread evenly over the fleet.
 *
 * Measured while it runs:
 * - memory: the hub's RSS (and its anonymous and file-backed parts) and JS
 *   heap every `sampleEveryS`, and the heap left after a full GC (through the
 *   inspector) every `gcEveryMinutes`; each as a least-squares slope in
 *   MiB/hour over the run after its warm-up, against a stated bound;
 * - loss: device-sim's messages sent, ACKed (0 or 1) and left unACKed after
 *   a drain long enough for every device in backoff to come back and resend;
 *   its readings against what InfluxDB holds once the spool is empty;
 * - liveness: every session of every device, from the device side (20 ms
 *   polls): each zombie session must end within two ping intervals of its
 *   start, no steady device (neither zombie nor flapping) may ever drop; the
 *   operator API is polled (`GET /v1/devices?online=false`) and a steady
 *   device it lists offline while its socket is open is a false offline; the
 *   hub's ping-timeout count must equal the zombie sessions it ended;
 * - responsiveness: /readyz (and /healthz, the event loop without the
 *   InfluxDB ping) every second, on a schedule, timed by the bench; and,
 *   as the baseline of the same moments, a bare node:http server pinned to
 *   the hub's core (what the machine alone does to an answer's time).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Summary } from '../../device-sim/index.js';
import type { DeviceSessions, FleetSnapshot, FleetStartArgs } from '../lib/fleet-worker.js';
import { HttpProbe, type ProbeFigures, type ProbeSample } from '../lib/http-probe.js';
import {
  BENCH_ENROLLMENT_KEY, countDeviceReadings, listOfflineDevices, metricByLabel, type OfflineDeviceView, parseMetrics, startHubProcess, type HubProcess,
} from '../lib/hub-process.js';
import { heapAfterFullGc } from '../lib/inspector.js';
import { Remote } from '../lib/ipc.js';
import { linearFit, theilSenSlope, type LinearFit } from '../lib/linear-fit.js';
import { describeMachine } from '../lib/machine.js';
import { CpuMeter, findChild, memoryStatus, pin, placement, sleep, until, type CpuShares } from '../lib/proc.js';
import type { ResultHead, Target } from '../lib/report.js';
import { startFleetWorker } from './connections.js';
import { distribution, type Distribution } from './liveness.js';
import { LATENCY_DEFAULTS, probeMaximum, type StepCpu } from './latency.js';

const MiB = 2 ** 20;
const HTTP_BASELINE_MODULE = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'servers', 'http-baseline.ts');
const PREFIX = 'soak-';

export type SoakOptions = {
  /** Load time after the fleet is connected. */
  minutes: number;
  devices: number;
  /** Records per TELEMETRY message, as in the probe (so a share of messages is the same share of readings). */
  batch: number;
  /** Share of the probed maximum the fleet offers. */
  share: number;
  flapPct: number;
  zombiesPct: number;
  /** The hub's ping interval (its default, 25 s); zombies must be offline within two. */
  pingIntervalMs: number;
  /** Saturating probe: latency's defaults. */
  probeSeconds: number;
  probeDevices: number;
  /** The first share of the run is left out of the slopes (the heap and the caches grow to their working size). */
  warmupShare: number;
  sampleEveryS: number;
  gcEveryMinutes: number;
  /** /readyz and /healthz, each every this many ms. */
  probeEveryMs: number;
  apiPollS: number;
  /** New connections per second (device-sim's ramp; also paces reconnects). */
  ramp: number;
  /** How long the fleet waits for outstanding ACKs at the end: devices in backoff (up to 60 s) come back and resend. */
  drainS: number;
  /** "Flat": each slope at most this, MiB/hour (see SOAK_NOTES for why this number). */
  slopeBoundMiBPerHour: number;
  /** /readyz p99 bound, ms. */
  readyzP99BoundMs: number;
  pin: boolean;
  hubEntry?: string[];
  log: (line: string) => void;
};

export const SOAK_DEFAULTS: SoakOptions = {
  minutes: 30, devices: 1000, batch: 10, share: 0.5, flapPct: 5, zombiesPct: 1, pingIntervalMs: 25_000,
  probeSeconds: LATENCY_DEFAULTS.probeSeconds, probeDevices: LATENCY_DEFAULTS.devices,
  warmupShare: 0.2, sampleEveryS: 5, gcEveryMinutes: 3, probeEveryMs: 1000, apiPollS: 5, ramp: 500, drainS: 150,
  slopeBoundMiBPerHour: 10, readyzP99BoundMs: 100, pin: true, log: () => {},
};

/** One sample of the hub's memory: /proc (RSS and its parts) and its /metrics (V8's heap, as prom-client reads it). */
export type MemorySample = {
  at: number; rss: number; anon: number; file: number; heapUsed: number; heapTotal: number; external: number;
  devicesOnline: number; spoolEntries: number;
};
/** Right after a full GC: V8's heap used and reserved, RSS and its parts, and how long the GC call took (a starved hub takes long). */
export type GcSample = { at: number; heapUsed: number; heapTotal: number; rss: number; anon: number; file: number; gcMs: number };

/**
 * The memory series and their slopes over the window after the warm-up. The samples every few seconds swing
 * with the GC (a heap that grows to hundreds of MiB of garbage before a major GC, RSS after it), so their
 * slopes come with a large error; the target is judged on the samples taken right after each full GC, the
 * same state of the heap each time.
 */
export type MemoryFigures = {
  samples: MemorySample[];
  gc: GcSample[];
  rss: Slope; anon: Slope; file: Slope; heapUsed: Slope;
  heapAfterGc: Slope; rssAfterGc: Slope; anonAfterGc: Slope; fileAfterGc: Slope;
  /** The same over the second half of the window: a slope that shrinks there is warm-up, one that holds is a leak. */
  secondHalf: { rss: Slope; heapAfterGc: Slope; rssAfterGc: Slope };
  peakRss: number;
};

export function memoryFigures(samples: MemorySample[], gc: GcSample[], windowFrom: number, windowTo: number): MemoryFigures {
  const mid = (windowFrom + windowTo) / 2;
  const series = (from: number, key: keyof MemorySample) => samples.filter((s) => s.at >= from && Number.isFinite(s[key])).map((s) => ({ at: s.at, v: s[key] }));
  const afterGc = (from: number, key: 'heapUsed' | 'rss' | 'anon' | 'file') => gc.filter((s) => s.at >= from).map((s) => ({ at: s.at, v: s[key] }));
  return {
    samples, gc,
    rss: slope(series(windowFrom, 'rss')), anon: slope(series(windowFrom, 'anon')), file: slope(series(windowFrom, 'file')),
    heapUsed: slope(series(windowFrom, 'heapUsed')),
    heapAfterGc: slope(afterGc(windowFrom, 'heapUsed')), rssAfterGc: slope(afterGc(windowFrom, 'rss')),
    anonAfterGc: slope(afterGc(windowFrom, 'anon')), fileAfterGc: slope(afterGc(windowFrom, 'file')),
    secondHalf: { rss: slope(series(mid, 'rss')), heapAfterGc: slope(afterGc(mid, 'heapUsed')), rssAfterGc: slope(afterGc(mid, 'rss')) },
    peakRss: Math.max(...samples.map((s) => s.rss)),
  };
}

/** A slope in MiB/hour: least squares with its standard error, and Theil–Sen (median of pairwise slopes, robust to a few outliers). */
export type Slope = { miBPerHour: number; stdError: number; medianMiBPerHour: number; points: number; firstMiB: number; lastMiB: number };

export type SoakSlice = {
  fromS: number; toS: number; ackedPerS: number; hubCpu: number; othersCpu: number;
  rssMiB: number; heapUsedMaxMiB: number; readyzP99: number; healthzP99: number; baselineP99: number;
};

export type SoakResult = ResultHead<'soak', SoakOptions> & {
  maxMessagesPerSecond: number;
  maxCpu: StepCpu;
  /** Messages/s per device the fleet was given (device-sim's rate). */
  ratePerDevice: number;
  offeredMessagesPerSecond: number;
  /** Over the load time: what the fleet sent (first transmissions) and got ACKed, per second. */
  sentMessagesPerSecond: number;
  ackedMessagesPerSecond: number;
  loadSeconds: number;
  /** Epoch ms of the load's start (the fleet connected) and end; window: the slopes' span, seconds from the start. */
  startedAt: number;
  endedAt: number;
  window: { fromS: number; toS: number };
  memory: MemoryFigures;
  loss: {
    sent: number; acked: number; acks: Record<string, number>; unacknowledged: number; dropped: number; resent: number;
    records: number; stored: number; lost: number; spoolDrainedS: number | undefined;
  };
  liveness: {
    zombies: number; flapping: number; steady: number;
    boundMs: number;
    /** Zombie sessions the hub ended (device side: open to drop). */
    zombieSessions: Distribution;
    /** Zombie sessions still open when the fleet began to close, and how many were older than the bound then. */
    zombieOpenAtEnd: number; zombieOpenAtEndOverBound: number;
    flaps: number; flappingSessions: number;
    /** Steady devices whose socket closed during the run (each must be 0), and a few of them. */
    steadyDropped: number; steadyDroppedIds: string[];
    apiPolls: number;
    /** Steady devices the API listed offline while their socket was open on the device side. */
    falseOffline: number; falseOfflineExamples: Array<{ at: number; id: string; offlineReason: string | null }>;
    /** Listings of each role as offline, by offlineReason. */
    listedOffline: Record<'zombie' | 'flapping' | 'steady', Record<string, number>>;
    pingTimeouts: number;
    disconnectsByReason: Record<string, number>;
    sim: { connects: number; connectFailures: Record<string, number>; disconnects: Record<string, number> };
  };
  responsiveness: {
    readyz: ProbeFigures & { skipped: number }; healthz: ProbeFigures & { skipped: number };
    /** The same probe of a bare node:http server on the hub's core, at the same moments (bench/servers/http-baseline.ts). */
    baseline: ProbeFigures & { skipped: number };
    gcPauses: number;
  };
  cpu: CpuShares;
  /** Every 10 s: the fleet, and CPU over those 10 s (the hub's and the neighbours', % of one core). */
  timeline: Array<{ s: number; connected: number; sentPerS: number; ackedPerS: number; flaps: number; hubCpu: number; othersCpu: number }>;
  /** The run in sixths: what changed over it, side by side. */
  slices: SoakSlice[];
};

function slope(points: Array<{ at: number; v: number }>): Slope {
  const xy = points.map((p) => ({ x: p.at / 3_600_000, y: p.v / MiB }));
  const fit: LinearFit = linearFit(xy);
  return {
    miBPerHour: fit.slope, stdError: fit.slopeStdError, medianMiBPerHour: theilSenSlope(xy), points: fit.points,
    firstMiB: (points[0]?.v ?? NaN) / MiB, lastMiB: (points.at(-1)?.v ?? NaN) / MiB,
  };
}

/** The hub's memory every few seconds: /proc and /metrics. */
function sampleMemory(hub: HubProcess, samples: MemorySample[]): () => Promise<void> {
  return async () => {
    try {
      const proc = memoryStatus(hub.pid);
      const m = await hub.metrics();
      samples.push({
        at: Date.now(), rss: proc.rss, anon: proc.anon, file: proc.file,
        heapUsed: m.get('pulsewire_nodejs_heap_size_used_bytes') ?? NaN,
        heapTotal: m.get('pulsewire_nodejs_heap_size_total_bytes') ?? NaN,
        external: m.get('pulsewire_nodejs_external_memory_bytes') ?? NaN,
        devicesOnline: m.get('pulsewire_devices_online') ?? NaN,
        spoolEntries: m.get('pulsewire_spool_entries') ?? NaN,
      });
    } catch {
      // a scrape that failed is a gap in the series, not an error of the run
    }
  };
}

export async function runSoak(options: Partial<SoakOptions> = {}): Promise<SoakResult> {
  const o: SoakOptions = { ...SOAK_DEFAULTS, ...options };
  const place = placement(o.pin);
  const machine = describeMachine();
  const boundMs = 2 * o.pingIntervalMs;
  o.log(`soak: ${o.minutes} min at ${o.share * 100}% of the maximum, ${o.devices} devices (${o.flapPct}% flapping, ${o.zombiesPct}% zombies), batch ${o.batch}, ping every ${o.pingIntervalMs / 1000} s; ${place.note}`);
  // The maximum from a hub of its own: the soak's hub starts clean, so its memory is the soak's and not
  // what a saturating probe left (a spool backlog, a heap grown for 1,000 sockets at full speed).
  const probeHub = await startHubProcess({ entry: o.hubEntry });
  let max: { messagesPerSecond: number; cpu: StepCpu };
  try {
    pin(probeHub.pid, place.subject, place);
    max = await probeMaximum(probeHub, { devices: o.probeDevices, batch: o.batch, window: LATENCY_DEFAULTS.window, probeSeconds: o.probeSeconds }, place);
  } finally {
    await probeHub.stop();
  }
  o.log(`  maximum (saturating probe, ${o.probeSeconds} s): ${Math.round(max.messagesPerSecond)} messages/s (${Math.round(max.messagesPerSecond * o.batch)} readings/s)`);
  const hub = await startHubProcess({ entry: o.hubEntry, inspector: true, env: { PULSEWIRE_PING_INTERVAL_MS: String(o.pingIntervalMs) } });
  const worker = startFleetWorker(place);
  const baselineServer = new Remote(HTTP_BASELINE_MODULE);
  const probes: HttpProbe[] = [];
  const timers: NodeJS.Timeout[] = [];
  try {
    pin(hub.pid, place.subject, place);
    pin(baselineServer.pid, place.subject, place);
    const { port: baselinePort } = await baselineServer.call<{ port: number }>('start');
    const spoolEmpty = async () => (await hub.metrics()).get('pulsewire_spool_entries') === 0;

    const offered = o.share * max.messagesPerSecond;
    // device-sim's scheduler sends at most 100 messages/s per device (one 100 ms tick, a window of 32).
    const ratePerDevice = Math.min(100, offered / o.devices);
    const start = await worker.call<{ zombies: number; flapping: number }>('start', {
      url: hub.deviceUrl, devices: o.devices, prefix: PREFIX, enrollmentKey: BENCH_ENROLLMENT_KEY, rate: ratePerDevice, batch: o.batch,
      zombies: o.zombiesPct, flap: o.flapPct, ramp: o.ramp, reconnect: true, sessions: true, drainMs: o.drainS * 1000,
    } satisfies FleetStartArgs);
    const snap = () => worker.call<FleetSnapshot>('snapshot');
    const allIn = await until(async () => (await snap()).connected >= o.devices, (o.devices / o.ramp) * 1000 + 60_000, 250);
    if (!allIn) o.log(`  only ${(await snap()).connected} of ${o.devices} connected at the start`);
    const roles = new Map((await worker.call<DeviceSessions[]>('sessions')).map((d) => [d.id, d.role]));
    o.log(`  ${o.devices} devices connected (${start.zombies} zombies, ${start.flapping} flapping), ${ratePerDevice.toFixed(2)} messages/s each: ${Math.round(ratePerDevice * o.devices)} messages/s offered`);

    const cpu = new CpuMeter();
    cpu.add('hub', hub.pid);
    cpu.add('influxd', () => findChild(hub.pid, 'influxd'));
    cpu.add('device-sim', worker.pid);
    cpu.add('bench', process.pid);
    const t0 = Date.now();
    const cpuMark = cpu.mark();
    const first = await snap();

    const memory: MemorySample[] = [];
    const takeMemory = sampleMemory(hub, memory);
    await takeMemory();
    timers.push(setInterval(() => void takeMemory(), o.sampleEveryS * 1000));

    // Full GCs, each at its own time; the probes that overlap one are left out of /readyz's figures.
    const gc: GcSample[] = [];
    const gcSpans: Array<{ from: number; to: number }> = [];
    const fullGc = async () => {
      const from = Date.now();
      try {
        const h = await heapAfterFullGc(hub.inspectorUrl!);
        const proc = memoryStatus(hub.pid);
        gc.push({ at: Date.now(), heapUsed: h.usedBytes, heapTotal: h.totalBytes, rss: proc.rss, anon: proc.anon, file: proc.file, gcMs: h.gcMs });
      } finally {
        gcSpans.push({ from, to: Date.now() });
      }
    };
    await fullGc();
    let gcRunning: Promise<void> | undefined;
    timers.push(setInterval(() => { gcRunning ??= fullGc().finally(() => { gcRunning = undefined; }); }, o.gcEveryMinutes * 60_000));

    const readyz = new HttpProbe(`${hub.baseUrl}/readyz`, o.probeEveryMs);
    probes.push(readyz);
    await sleep(o.probeEveryMs / 2);
    const healthz = new HttpProbe(`${hub.baseUrl}/healthz`, o.probeEveryMs);
    probes.push(healthz);
    const baseline = new HttpProbe(`http://127.0.0.1:${baselinePort}/healthz`, o.probeEveryMs);
    probes.push(baseline);

    // The operator's view against the devices' own: a steady device listed offline while its socket is open.
    const listed: SoakResult['liveness']['listedOffline'] = { zombie: {}, flapping: {}, steady: {} };
    const falseOffline: SoakResult['liveness']['falseOfflineExamples'] = [];
    let falseOfflineCount = 0;
    let apiPolls = 0;
    let polling: Promise<void> | undefined;
    const poll = async () => {
      const offline = await listOfflineDevices(hub.baseUrl, PREFIX);
      apiPolls++;
      const steadyListed: OfflineDeviceView[] = [];
      for (const d of offline) {
        const role = roles.get(d.id) ?? 'steady';
        const reason = d.offlineReason ?? 'none';
        listed[role][reason] = (listed[role][reason] ?? 0) + 1;
        if (role === 'steady') steadyListed.push(d);
      }
      if (steadyListed.length === 0) return;
      const states = await worker.call<Record<string, string | undefined>>('states', { ids: steadyListed.map((d) => d.id) });
      for (const d of steadyListed) {
        if (states[d.id] !== 'open') continue;
        falseOfflineCount++;
        if (falseOffline.length < 20) falseOffline.push({ at: Date.now(), id: d.id, offlineReason: d.offlineReason });
      }
    };
    timers.push(setInterval(() => { polling ??= poll().catch((err) => o.log(`  API poll failed: ${(err as Error).message}`)).finally(() => { polling = undefined; }); }, o.apiPollS * 1000));

    const fleetTimeline: Array<FleetSnapshot & { hubCpu: number; othersCpu: number }> = [{ ...first, hubCpu: NaN, othersCpu: NaN }];
    let sliceMark = cpu.mark();
    timers.push(setInterval(() => void snap().then((s) => {
      const shares = cpu.since(sliceMark);
      sliceMark = cpu.mark();
      fleetTimeline.push({ ...s, hubCpu: shares.percent.hub ?? NaN, othersCpu: shares.othersPercent });
    }, () => {}), 10_000));
    const progress = setInterval(() => {
      const m = memory.at(-1);
      const s = fleetTimeline.at(-1)!;
      o.log(`  ${((Date.now() - t0) / 60_000).toFixed(1)} min: ${s.connected} connected, ${s.flaps} flaps; hub RSS ${m ? (m.rss / MiB).toFixed(0) : '?'} MiB, heap ${m ? (m.heapUsed / MiB).toFixed(0) : '?'} MiB; /readyz p99 so far ${readyz.figures().p99.toFixed(1)} ms`);
    }, 60_000);
    timers.push(progress);

    await sleep(o.minutes * 60_000);
    for (const t of timers.splice(0)) clearInterval(t);
    await gcRunning;
    await polling;
    await fullGc();
    await takeMemory();
    const last = await snap();
    const t1 = Date.now();
    const cpuShares = cpu.since(cpuMark);
    for (const p of probes) await p.stop();
    o.log(`  load done after ${((t1 - t0) / 60_000).toFixed(1)} min; ${CpuMeter.line(cpuShares)}; draining (up to ${o.drainS} s)`);

    const stopped = await worker.call<{ summary: Summary; closingAt: number | undefined }>('stop');
    const { summary } = stopped;
    // Not seen (the fleet closed between two polls): now, which only makes a zombie still open look older.
    const closingAt = stopped.closingAt ?? Date.now();
    const sessions = await worker.call<DeviceSessions[]>('sessions');
    const drainFrom = Date.now();
    const drained = await until(spoolEmpty, 600_000, 500);
    const spoolDrainedS = drained ? (Date.now() - drainFrom) / 1000 : undefined;
    const text = await hub.metricsText();
    const metrics = parseMetrics(text);
    const stored = await countDeviceReadings(hub.databaseUrl, PREFIX, 600_000);

    // Memory: slopes over the window after the warm-up.
    const windowFrom = t0 + o.warmupShare * (t1 - t0);

    // Liveness, device side.
    const zombieDurations: number[] = [];
    let zombieOpenAtEnd = 0;
    let zombieOpenAtEndOverBound = 0;
    let flappingSessions = 0;
    const steadyDroppedIds: string[] = [];
    for (const d of sessions) {
      if (d.role === 'zombie') {
        for (const s of d.sessions) {
          if (s.closedAt !== undefined) zombieDurations.push(s.closedAt - s.openedAt);
          else {
            zombieOpenAtEnd++;
            if (closingAt - s.openedAt > boundMs) zombieOpenAtEndOverBound++;
          }
        }
      } else if (d.role === 'flapping') flappingSessions += d.sessions.length;
      else if (d.sessions.length !== 1 || d.sessions[0]!.closedAt !== undefined) steadyDroppedIds.push(d.id);
    }
    const count = (role: string) => sessions.filter((d) => d.role === role).length;
    const loadS = (t1 - t0) / 1000;
    const t = summary.telemetry;
    const overlapsGc = (r: ProbeSample) => gcSpans.some((g) => r.at <= g.to && r.at + r.ms >= g.from);

    const { log: _l, hubEntry: _h, ...recorded } = o;
    const result: SoakResult = {
      scenario: 'soak', machine, placement: place, options: recorded,
      maxMessagesPerSecond: max.messagesPerSecond, maxCpu: max.cpu, ratePerDevice,
      offeredMessagesPerSecond: ratePerDevice * o.devices,
      sentMessagesPerSecond: (last.sent - first.sent) / loadS,
      ackedMessagesPerSecond: (last.acked - first.acked) / loadS,
      loadSeconds: loadS,
      startedAt: t0,
      endedAt: t1,
      window: { fromS: (windowFrom - t0) / 1000, toS: loadS },
      memory: memoryFigures(memory, gc, windowFrom, t1),
      loss: {
        sent: t.sent, acked: t.stored, acks: t.acknowledged, unacknowledged: t.unacknowledged, dropped: t.dropped, resent: t.resent,
        records: t.records, stored, lost: t.records - stored, spoolDrainedS,
      },
      liveness: {
        zombies: count('zombie'), flapping: count('flapping'), steady: count('steady'), boundMs,
        zombieSessions: distribution(zombieDurations, boundMs), zombieOpenAtEnd, zombieOpenAtEndOverBound,
        flaps: summary.chaos.flaps, flappingSessions,
        steadyDropped: steadyDroppedIds.length, steadyDroppedIds: steadyDroppedIds.slice(0, 20),
        apiPolls, falseOffline: falseOfflineCount, falseOfflineExamples: falseOffline, listedOffline: listed,
        pingTimeouts: metrics.get('pulsewire_ping_timeouts_total') ?? 0,
        disconnectsByReason: metricByLabel(text, 'pulsewire_disconnects_total', 'reason'),
        sim: { connects: summary.connections.connects, connectFailures: summary.connections.connectFailures, disconnects: summary.connections.disconnects },
      },
      responsiveness: {
        readyz: readyz.figures(t0, t1, overlapsGc), healthz: healthz.figures(t0, t1, overlapsGc), baseline: baseline.figures(t0, t1, overlapsGc),
        gcPauses: gcSpans.length,
      },
      cpu: cpuShares,
      timeline: fleetTimeline.slice(1).map((s, i) => {
        const prev = fleetTimeline[i]!;
        const dt = (s.at - prev.at) / 1000;
        return {
          s: (s.at - t0) / 1000, connected: s.connected, sentPerS: (s.sent - prev.sent) / dt, ackedPerS: (s.acked - prev.acked) / dt, flaps: s.flaps,
          hubCpu: s.hubCpu, othersCpu: s.othersCpu,
        };
      }),
      slices: [],
      targets: [],
    };
    result.slices = slices(result, t0, readyz, healthz, baseline, overlapsGc);
    result.targets = soakTargets(result);
    return result;
  } finally {
    for (const t of timers) clearInterval(t);
    for (const p of probes) await p.stop();
    await worker.close();
    await baselineServer.close();
    await hub.stop();
  }
}

function slices(r: SoakResult, t0: number, readyz: HttpProbe, healthz: HttpProbe, baseline: HttpProbe, skip: (s: ProbeSample) => boolean): SoakSlice[] {
  const mean = (xs: number[]) => (xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length);
  return Array.from({ length: 6 }, (_, k) => {
    const fromS = (k * r.loadSeconds) / 6;
    const toS = ((k + 1) * r.loadSeconds) / 6;
    const ticks = r.timeline.filter((t) => t.s > fromS && t.s <= toS);
    const memory = r.memory.samples.filter((m) => m.at >= t0 + fromS * 1000 && m.at <= t0 + toS * 1000);
    const [from, to] = [t0 + fromS * 1000, t0 + toS * 1000];
    return {
      fromS, toS,
      ackedPerS: mean(ticks.map((t) => t.ackedPerS)), hubCpu: mean(ticks.map((t) => t.hubCpu)), othersCpu: mean(ticks.map((t) => t.othersCpu)),
      rssMiB: (memory.at(-1)?.rss ?? NaN) / MiB, heapUsedMaxMiB: Math.max(...memory.map((m) => m.heapUsed)) / MiB,
      readyzP99: readyz.figures(from, to, skip).p99, healthzP99: healthz.figures(from, to, skip).p99, baselineP99: baseline.figures(from, to, skip).p99,
    };
  });
}

const mib = (s: Slope) => `${s.miBPerHour.toFixed(1)} ± ${s.stdError.toFixed(1)}`;

export function soakTargets(r: SoakResult): Target[] {
  const bound = r.options.slopeBoundMiBPerHour;
  const m = r.memory;
  const l = r.loss;
  const v = r.liveness;
  const z = v.zombieSessions;
  const ready = r.responsiveness.readyz;
  // A zombie session the hub ended is one ping timeout; any more were live devices cut for "not answering".
  const nonZombiePingTimeouts = v.pingTimeouts - z.count;
  return [
    {
      target: `memory flat: the JS heap and RSS right after a full GC each grow at most ${bound} MiB/hour (Theil–Sen slope after the warm-up)`,
      figure: `after each of ${m.heapAfterGc.points} full GCs over ${((r.window.toS - r.window.fromS) / 60).toFixed(0)} min: heap ${m.heapAfterGc.medianMiBPerHour.toFixed(1)} MiB/h (least squares ${mib(m.heapAfterGc)}; ${m.heapAfterGc.firstMiB.toFixed(1)} to ${m.heapAfterGc.lastMiB.toFixed(1)} MiB), RSS ${m.rssAfterGc.medianMiBPerHour.toFixed(1)} MiB/h (least squares ${mib(m.rssAfterGc)}; ${m.rssAfterGc.firstMiB.toFixed(0)} to ${m.rssAfterGc.lastMiB.toFixed(0)} MiB: anonymous ${m.anonAfterGc.medianMiBPerHour.toFixed(1)}, file-backed ${m.fileAfterGc.medianMiBPerHour.toFixed(1)} MiB/h)`,
      met: m.rssAfterGc.medianMiBPerHour <= bound && m.heapAfterGc.medianMiBPerHour <= bound,
    },
    {
      target: 'zero loss: messages sent = ACKed, readings sent = stored in InfluxDB',
      figure: `messages sent ${l.sent}, ACKed ${l.acked} (${JSON.stringify(l.acks)}), unACKed ${l.unacknowledged}, dropped ${l.dropped}, resent ${l.resent}; readings ${l.records}, in InfluxDB ${l.stored}, lost ${l.lost}`,
      met: l.sent === l.acked && l.unacknowledged === 0 && l.dropped === 0 && l.lost === 0,
    },
    {
      target: 'no live device listed offline (steady devices: never dropped, never listed offline while connected, no ping timeout)',
      figure: `${v.steady} steady devices: ${v.steadyDropped} dropped, ${v.falseOffline} listings offline while connected over ${v.apiPolls} API polls; hub ping timeouts ${v.pingTimeouts} against ${z.count} zombie sessions ended (${nonZombiePingTimeouts} others)`,
      met: v.steadyDropped === 0 && v.falseOffline === 0 && nonZombiePingTimeouts === 0,
    },
    {
      target: `every zombie session ends within two ping intervals (${v.boundMs / 1000} s)`,
      figure: `${z.count} sessions of ${v.zombies} zombies: min ${(z.min / 1000).toFixed(1)} s, p50 ${(z.p50 / 1000).toFixed(1)} s, max ${(z.max / 1000).toFixed(1)} s, ${z.overBound} over; ${v.zombieOpenAtEnd} open at the end (${v.zombieOpenAtEndOverBound} older than the bound)`,
      met: z.count > 0 && z.overBound === 0 && v.zombieOpenAtEndOverBound === 0,
    },
    {
      target: `the event loop answers: /readyz p99 < ${r.options.readyzP99BoundMs} ms`,
      figure: `/readyz p50 ${ready.p50.toFixed(1)} ms, p99 ${ready.p99.toFixed(1)} ms, max ${ready.max.toFixed(0)} ms over ${ready.probes} probes (${ready.notOk} not 200, ${ready.skipped} left out: overlapping the bench's ${r.responsiveness.gcPauses} forced GCs); /healthz p99 ${r.responsiveness.healthz.p99.toFixed(1)} ms; the machine alone (a bare HTTP server on the hub's core, same moments) p99 ${r.responsiveness.baseline.p99.toFixed(1)} ms`,
      met: ready.p99 < r.options.readyzP99BoundMs && ready.notOk === 0,
    },
  ];
}
