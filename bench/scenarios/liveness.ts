/**
 * Scenario `liveness` (issue 4, scenario 3): N devices of which a share are
 * zombies (device-sim `zombies`: the socket never answers pings but keeps
 * TCP open). A zombie never pongs, so its last sign of life is its
 * connection; the time to offline is measured from it, two ways:
 * - device side (precise): device-sim's own socket, opened at T0, dropped
 *   by the hub at T1 (polled every 20 ms in the fleet process);
 * - hub side (what an operator sees): the operator API polled every 250 ms
 *   (`GET /v1/devices?online=false&prefix=`), time of the first poll that
 *   lists the zombie offline with reason ping-timeout, minus its connectedAt.
 * The bound is two ping intervals. Non-zombies listed offline are counted
 * (false positives). Devices do not reconnect within the run.
 *
 * More devices than one process holds (issue 17: 50,000) run on a hub of
 * workers and a fleet of several device-sim processes, unpinned, as in
 * `connections` (hubScale).
 */
import { FleetGroup } from '../lib/fleet-group.js';
import type { FleetStartArgs } from '../lib/fleet-worker.js';
import { BENCH_ENROLLMENT_KEY, listOfflineDevices, startHubProcess } from '../lib/hub-process.js';
import { describeMachine } from '../lib/machine.js';
import { CpuMeter, pin, placement, sleep, type CpuShares } from '../lib/proc.js';
import { CONNECT_STALL_MS, hubScale, placementFor } from './connections.js';
import type { ResultHead, Target } from '../lib/report.js';

export type LivenessOptions = {
  devices: number;
  /** Percent zombies. */
  zombiesPct: number;
  pingIntervalMs: number;
  rate: number;
  ramp: number;
  pollMs: number;
  /** Hub workers when the devices do not fit one process (undefined: the fewest that hold them; 1: cut to one process's cap). */
  workers?: number;
  /** Connections one process may hold (default from the open-files limit; the smoke test lowers it). */
  processCap?: number;
  pin: boolean;
  hubEntry?: string[];
  log: (line: string) => void;
};

export const LIVENESS_DEFAULTS: LivenessOptions = {
  devices: 19_000, zombiesPct: 5, pingIntervalMs: 5_000, rate: 0.1, ramp: 2_000, pollMs: 250, pin: true, log: () => {},
};

export type Distribution = { count: number; p50: number; p99: number; max: number; min: number; overBound: number };

export type LivenessResult = ResultHead<'liveness', LivenessOptions> & {
  devicesRun: number;
  /** Hub worker processes (1: one process). */
  workers: number;
  /** Seconds from the first connection attempt until every device was connected (or listed offline). */
  connectSeconds: number;
  /** CPU from the first connection to the end, by process (hub: primary and workers together). */
  cpu: CpuShares;
  capNote: string;
  zombies: number;
  boundMs: number;
  deviceSide: Distribution & { neverDropped: number };
  hubSide: Distribution & { notSeen: number; otherReasons: Record<string, number> };
  /** The poll before the one that listed each zombie: the hub marked it offline after this. */
  hubSideLowerBound: Distribution;
  /** Non-zombies listed offline with an offline reason (a device listed before its first session, reason none, is not counted). */
  falseOffline: number;
  falseOfflineByReason: Record<string, number>;
  /** Devices the API listed as offline with no reason: registered on connect before their session was attached (a race of the listing, not a report). */
  listedBeforeFirstSession: number;
  pollMsMedian: number;
  sim: { connects: number; sent: number; stored: number; connectFailures: Record<string, number>; disconnects: Record<string, number>; zombiesOpened: number; loopDelayMaxMs?: number };
};

/** Count, min, p50, p99, max of `values` and how many are over `bound` (liveness's zombies, the soak's zombie sessions). */
export function distribution(values: number[], bound: number): Distribution {
  const s = [...values].sort((a, b) => a - b);
  const q = (p: number) => (s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]!);
  return { count: s.length, min: s[0] ?? NaN, p50: q(0.5), p99: q(0.99), max: s.at(-1) ?? NaN, overBound: s.filter((v) => v > bound).length };
}

export async function runLiveness(options: Partial<LivenessOptions> = {}): Promise<LivenessResult> {
  const o: LivenessOptions = { ...LIVENESS_DEFAULTS, ...options };
  const place = placement(o.pin);
  const machine = describeMachine();
  const scale = hubScale(o.devices, o.workers, o.processCap);
  const devices = scale.devices;
  const runPlace = placementFor(scale, place);
  const capNote = scale.workers > 1
    ? `${devices} devices on a hub of ${scale.workers} workers (PULSEWIRE_WORKERS; one process holds at most ${scale.cap}: ${scale.capReason}), the fleet in ${scale.fleetProcesses} device-sim processes on loopback source addresses`
    : devices < 20_000
      ? `issue 4 asks 20,000 devices with 1,000 zombies; ${devices} here (one process: ${scale.capReason})`
      : 'as issue 4 asks';
  const boundMs = 2 * o.pingIntervalMs;
  const prefix = 'lv-';
  o.log(`liveness: ${devices} devices${scale.workers > 1 ? ` on ${scale.workers} workers, ${scale.fleetProcesses} fleet processes` : ''}, ${o.zombiesPct} % zombies, ping ${o.pingIntervalMs} ms (bound ${boundMs} ms); ${runPlace.note}`);
  const hub = await startHubProcess({ entry: o.hubEntry, env: { PULSEWIRE_PING_INTERVAL_MS: String(o.pingIntervalMs) }, ...(scale.workers > 1 ? { workers: scale.workers } : {}) });
  const worker = new FleetGroup(scale.fleetProcesses, runPlace);
  const meter = new CpuMeter();
  meter.add('hub', () => hub.processes().hub);
  meter.add('influxd', () => hub.processes().influxd);
  if (scale.workers > 1) meter.add('nats-server', () => hub.processes().natsServer);
  meter.add('device-sim', worker.pids);
  try {
    for (const pid of hub.processes().hub) pin(pid, runPlace.subject, runPlace);
    const mark = meter.mark();
    const startedAt = Date.now();
    const { zombies } = await worker.start({ url: hub.deviceUrl, devices, prefix, enrollmentKey: BENCH_ENROLLMENT_KEY, rate: o.rate, batch: 4, zombies: o.zombiesPct, ramp: o.ramp } satisfies FleetStartArgs);
    // at: the poll that first listed it; notBefore: the start of the poll before (the hub side lies in between).
    const seen = new Map<string, { at: number; notBefore: number; connectedAt: number; reason: string }>();
    let previousPollStart = Date.now();
    const listedBeforeOnline = new Set<string>();
    const pollMs: number[] = [];
    // Connecting may take longer than the ramp says (a 50,000 fleet on two busy cores): wait while the count grows.
    const hardDeadline = Date.now() + 15 * 60_000;
    let best = 0;
    let bestAt = Date.now();
    let lastConnectAt = Date.now();
    let connectedAll = false;
    for (;;) {
      const before = Date.now();
      const offline = await listOfflineDevices(hub.baseUrl, prefix);
      const at = Date.now();
      pollMs.push(at - before);
      for (const d of offline) {
        // Listed with no reason: registered (enrollment) but its first session not yet attached; not an offline report.
        if (d.offlineReason === null) { listedBeforeOnline.add(d.id); continue; }
        if (!seen.has(d.id)) seen.set(d.id, { at, notBefore: previousPollStart, connectedAt: d.connectedAt ? Date.parse(d.connectedAt) : NaN, reason: d.offlineReason });
      }
      previousPollStart = before;
      const snap = await worker.snapshot();
      if (snap.connected + seen.size > best) { best = snap.connected + seen.size; bestAt = Date.now(); }
      if (!connectedAll && snap.connected + seen.size >= devices) { connectedAll = true; lastConnectAt = Date.now(); o.log(`  all ${devices} connected after ${((lastConnectAt - startedAt) / 1000).toFixed(1)} s; waiting for ${zombies} zombies`); }
      // Done when every zombie is listed offline, or two bounds after the last connection.
      const zombiesSeen = [...seen.values()].filter((s) => s.reason === 'ping-timeout').length;
      if (zombiesSeen >= zombies && snap.zombiesClosed >= zombies) break;
      if (connectedAll && Date.now() - lastConnectAt > 2 * boundMs + 5_000) break;
      if (!connectedAll && (Date.now() - bestAt > CONNECT_STALL_MS || Date.now() > hardDeadline)) {
        o.log(`  gave up: ${snap.connected} connected and ${seen.size} listed offline of ${devices}, none more for ${((Date.now() - bestAt) / 1000).toFixed(0)} s`);
        break;
      }
      await sleep(Math.max(0, o.pollMs - (Date.now() - before)));
    }
    const connectSeconds = ((connectedAll ? lastConnectAt : Date.now()) - startedAt) / 1000;
    const cpu = meter.since(mark);
    o.log(`  CPU from the first connection: ${CpuMeter.line(cpu)}`);
    const { loopDelayMaxMs } = await worker.snapshot();
    const { summary, zombies: times } = await worker.stop();
    const zombieIds = new Set(times.map((t) => t.id));
    const device = times.filter((t) => t.closedAt !== undefined).map((t) => t.closedAt! - t.openedAt);
    const hubTimes: number[] = [];
    const hubLower: number[] = [];
    const otherReasons: Record<string, number> = {};
    const falseOfflineByReason: Record<string, number> = {};
    for (const [id, s] of seen) {
      if (!zombieIds.has(id)) { falseOfflineByReason[s.reason] = (falseOfflineByReason[s.reason] ?? 0) + 1; continue; }
      if (s.reason === 'ping-timeout') { hubTimes.push(s.at - s.connectedAt); hubLower.push(Math.max(0, s.notBefore - s.connectedAt)); }
      else otherReasons[s.reason] = (otherReasons[s.reason] ?? 0) + 1;
    }
    const sortedPoll = [...pollMs].sort((a, b) => a - b);
    const result: LivenessResult = {
      scenario: 'liveness', machine, placement: runPlace, options: (({ log: _l, hubEntry: _h, ...rest }) => rest)(o),
      devicesRun: devices, workers: scale.workers, connectSeconds, cpu, capNote, zombies, boundMs,
      deviceSide: { ...distribution(device, boundMs), neverDropped: zombies - device.length },
      hubSide: { ...distribution(hubTimes, boundMs), notSeen: zombies - hubTimes.length - Object.values(otherReasons).reduce((a, b) => a + b, 0), otherReasons },
      hubSideLowerBound: distribution(hubLower, boundMs),
      falseOffline: Object.values(falseOfflineByReason).reduce((n, v) => n + v, 0),
      falseOfflineByReason,
      listedBeforeFirstSession: listedBeforeOnline.size,
      pollMsMedian: sortedPoll[Math.floor(sortedPoll.length / 2)] ?? NaN,
      sim: {
        connects: summary.connections.connects, sent: summary.telemetry.sent, stored: summary.telemetry.stored,
        connectFailures: summary.connections.connectFailures, disconnects: summary.connections.disconnects, zombiesOpened: times.length, loopDelayMaxMs,
      },
      targets: [],
    };
    result.targets = livenessTargets(result);
    return result;
  } finally {
    await worker.close();
    await hub.stop();
  }
}

export function livenessTargets(r: LivenessResult): Target[] {
  const d = r.deviceSide;
  const h = r.hubSide;
  return [
    {
      target: `every zombie offline within two ping intervals (${r.boundMs / 1000} s)`,
      figure: `device side: ${d.count} of ${r.zombies} dropped (${r.sim.zombiesOpened} ever connected), max ${(d.max / 1000).toFixed(2)} s, ${d.overBound} over, ${d.neverDropped} never; hub API: ${h.count} ping-timeout, max between ${(r.hubSideLowerBound.max / 1000).toFixed(2)} and ${(h.max / 1000).toFixed(2)} s (${r.options.pollMs} ms polls), ${r.hubSideLowerBound.overBound} surely over, ${h.notSeen} not seen`,
      met: d.count === r.zombies && d.overBound === 0 && h.count === r.zombies && r.hubSideLowerBound.overBound === 0,
    },
    { target: 'no live device reported offline', figure: `${r.falseOffline} non-zombies listed offline with a reason (${JSON.stringify(r.falseOfflineByReason)}); ${r.listedBeforeFirstSession} listed offline without one while connecting`, met: r.falseOffline === 0 },
  ];
}
