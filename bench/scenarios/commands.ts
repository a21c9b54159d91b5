/**
 * Scenario `commands` (issue 6): with 10,000 connected devices, the command
 * round trip (API call to final state) at 100 and at 1,000 commands per
 * second. The hub (built dist, managed influxd) holds a device-sim fleet
 * (bench/lib/fleet-worker.ts, own process) whose devices answer `echo` with a
 * final RESULT at once (or `resultDelayMs` later); a load process
 * (bench/lib/command-load.ts) issues `POST /v1/devices/:id/commands?wait=30`
 * open-loop to random devices and times each call to its final answer. The
 * same fleet and load then go to the command relay (bench/servers/
 * command-relay.ts: same sockets, a COMMAND written at once, answered on
 * RESULT, no queue, no storage), so each figure of the hub is also a ratio to
 * what the plumbing alone costs on this machine in this run.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CommandLoadArgs, CommandLoadResult } from '../lib/command-load.js';
import type { FleetSnapshot, FleetStartArgs } from '../lib/fleet-worker.js';
import { BENCH_ENROLLMENT_KEY, BENCH_OPERATOR_TOKEN, startHubProcess } from '../lib/hub-process.js';
import { Remote } from '../lib/ipc.js';
import { describeMachine } from '../lib/machine.js';
import { cpuSeconds, median, pin, placement, sleep, until, vmRssBytes, type Placement } from '../lib/proc.js';
import type { ResultHead, Target } from '../lib/report.js';
import { startFleetWorker } from './connections.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const LOAD_MODULE = path.join(here, '..', 'lib', 'command-load.ts');
const RELAY_MODULE = path.join(here, '..', 'servers', 'command-relay.ts');

export type CommandsOptions = {
  devices: number;
  /** Commands per second, one phase each, in this order. */
  rates: number[];
  /** Each phase's load; the first warmupS are counted but not in the percentiles. */
  phaseSeconds: number;
  warmupS: number;
  /** The devices answer this long after the COMMAND (0: at once). */
  resultDelayMs: number;
  /** `?wait=` of each request. */
  waitS: number;
  /** New connections per second while the fleet connects (the hub accepts ~700/s on this machine). */
  ramp: number;
  /** TELEMETRY per device per second in the background (device-sim's minimum: practically idle). */
  telemetryRate: number;
  pingIntervalMs: number;
  /** Keep-alive sockets of the load process. */
  maxSockets: number;
  pin: boolean;
  hubEntry?: string[];
  log: (line: string) => void;
};

export const COMMANDS_DEFAULTS: CommandsOptions = {
  devices: 10_000, rates: [100, 1_000], phaseSeconds: 20, warmupS: 2, resultDelayMs: 0, waitS: 30, ramp: 600,
  telemetryRate: 0.0001, pingIntervalMs: 25_000, maxSockets: 256, pin: true, log: () => {},
};

export type PhaseFigures = {
  rate: number;
  load: CommandLoadResult;
  /** Mean CPU % of one core of the subject over the phase, and its RSS (median and peak of 0.5 s samples). */
  cpuPercent: number;
  rssMedianBytes: number;
  rssPeakBytes: number;
  /** Fleet disconnects and connected count across the phase: the command load must not cost devices their link (pings, ACKs). */
  disconnects: number;
  connectedAfter: number;
  /** RESULTs the fleet sent in the phase. */
  answered: number;
};

export type SubjectFigures = {
  connected: number;
  rampS: number;
  connectFailures: number;
  rssHeldBytes: number;
  phases: PhaseFigures[];
};

export type CommandsResult = ResultHead<'commands', CommandsOptions> & { hub: SubjectFigures; relay: SubjectFigures };

/** Ids as device-sim names them: prefix + number from 1, zero-padded to at least 5 digits. */
export function fleetIds(prefix: string, devices: number): string[] {
  const width = Math.max(5, String(devices).length);
  return Array.from({ length: devices }, (_, i) => `${prefix}${String(i + 1).padStart(width, '0')}`);
}

type Subject = { name: string; pid: number; baseUrl: string; deviceUrl: string; token?: string };

/** Samples the subject's RSS every 0.5 s while `work` runs. */
async function sampled<T>(pid: number, work: () => Promise<T>): Promise<{ value: T; cpuPercent: number; rss: number[] }> {
  const rss: number[] = [vmRssBytes(pid)];
  const timer = setInterval(() => rss.push(vmRssBytes(pid)), 500);
  const cpu0 = cpuSeconds(pid);
  const t0 = performance.now();
  try {
    const value = await work();
    return { value, cpuPercent: ((cpuSeconds(pid) - cpu0) / ((performance.now() - t0) / 1000)) * 100, rss };
  } finally {
    clearInterval(timer);
  }
}

async function measure(subject: Subject, o: CommandsOptions, place: Placement): Promise<SubjectFigures> {
  const prefix = `cmd-${subject.name}-`;
  const fleet = startFleetWorker(place);
  const load = new Remote(LOAD_MODULE);
  pin(load.pid, place.load, place);
  try {
    const started = Date.now();
    // Reconnect on: a handshake the busy hub does not finish in time is retried (with backoff), not lost for the run.
    await fleet.call('start', { url: subject.deviceUrl, devices: o.devices, prefix, enrollmentKey: BENCH_ENROLLMENT_KEY, rate: o.telemetryRate, batch: 1, ramp: o.ramp, reconnect: true } satisfies FleetStartArgs);
    const snap = () => fleet.call<FleetSnapshot>('snapshot');
    await until(async () => (await snap()).connected >= o.devices, (o.devices / o.ramp) * 1000 + 120_000, 250);
    const rampS = (Date.now() - started) / 1000;
    const ready = await snap();
    o.log(`  ${subject.name}: ${ready.connected} of ${o.devices} devices connected in ${rampS.toFixed(1)} s (${ready.connectFailures} failed handshakes retried)`);
    if (ready.connected < o.devices) throw new Error(`${subject.name}: only ${ready.connected} of ${o.devices} devices connected`);
    await sleep(3000);
    const rssHeldBytes = vmRssBytes(subject.pid);
    const deviceIds = fleetIds(prefix, o.devices);
    const phases: PhaseFigures[] = [];
    for (const rate of o.rates) {
      const before = await snap();
      const args: CommandLoadArgs = {
        baseUrl: subject.baseUrl, token: subject.token, deviceIds, commandsPerSecond: rate, seconds: o.phaseSeconds, waitS: o.waitS,
        name: 'echo', args: { delayMs: o.resultDelayMs }, warmupS: o.warmupS, maxSockets: o.maxSockets,
      };
      const { value: result, cpuPercent, rss } = await sampled(subject.pid, () => load.call<CommandLoadResult>('run', args));
      const after = await snap();
      const phase: PhaseFigures = {
        rate, load: result, cpuPercent, rssMedianBytes: median(rss), rssPeakBytes: Math.max(...rss),
        disconnects: after.disconnects - before.disconnects, connectedAfter: after.connected, answered: after.commandsAnswered - before.commandsAnswered,
      };
      phases.push(phase);
      const rt = result.roundTripMs;
      o.log(`  ${subject.name} at ${rate}/s: ${result.issued} issued, ${result.finals.succeeded ?? 0} succeeded, p50 ${rt.p50.toFixed(1)} ms, p99 ${rt.p99.toFixed(1)} ms, CPU ${cpuPercent.toFixed(0)} %`);
      await sleep(2000);
    }
    await fleet.call('stop');
    return { connected: ready.connected, rampS, connectFailures: ready.connectFailures, rssHeldBytes, phases };
  } finally {
    await load.close();
    await fleet.close();
  }
}

export async function runCommands(options: Partial<CommandsOptions> = {}): Promise<CommandsResult> {
  const o: CommandsOptions = { ...COMMANDS_DEFAULTS, ...options };
  const place = placement(o.pin);
  const machine = describeMachine();
  o.log(`commands: ${o.devices} devices, ${o.rates.join(' then ')} commands/s for ${o.phaseSeconds} s each, RESULT after ${o.resultDelayMs} ms; hub, then the relay baseline; ${place.note}`);
  const hubProc = await startHubProcess({ entry: o.hubEntry, env: { PULSEWIRE_PING_INTERVAL_MS: String(o.pingIntervalMs) } });
  let hub: SubjectFigures;
  try {
    pin(hubProc.pid, place.subject, place);
    hub = await measure({ name: 'hub', pid: hubProc.pid, baseUrl: hubProc.baseUrl, deviceUrl: hubProc.deviceUrl, token: BENCH_OPERATOR_TOKEN }, o, place);
  } finally {
    await hubProc.stop();
  }
  const relayProc = new Remote(RELAY_MODULE);
  let relay: SubjectFigures;
  try {
    pin(relayProc.pid, place.subject, place);
    const { port } = await relayProc.call<{ port: number }>('start', { pingIntervalMs: o.pingIntervalMs });
    const baseUrl = `http://127.0.0.1:${port}`;
    relay = await measure({ name: 'relay', pid: relayProc.pid, baseUrl, deviceUrl: `ws://127.0.0.1:${port}/v1/device` }, o, place);
    await relayProc.call('stop');
  } finally {
    await relayProc.close();
  }
  const { log: _l, hubEntry: _h, ...recorded } = o;
  const result: CommandsResult = { scenario: 'commands', machine, placement: place, options: recorded, hub, relay, targets: [] };
  result.targets = commandsTargets(result);
  return result;
}

/** Commands that did not reach `succeeded` in one call: other finals, 202s, HTTP and socket errors, no answer. */
export function lostCommands(l: CommandLoadResult): number {
  return l.issued - (l.finals.succeeded ?? 0);
}

/** Final answers within the load window over the offered rate. */
export const sustained = (p: PhaseFigures): number => p.load.completedInWindowPerSecond / p.rate;

export const P99_BOUND_MS = 100;

export function commandsTargets(r: CommandsResult): Target[] {
  const pairs = r.hub.phases.map((h, i) => ({ h, b: r.relay.phases[i] }));
  const p99 = (p: PhaseFigures | undefined) => p?.load.roundTripMs.p99 ?? NaN;
  return [
    {
      target: 'no command lost: every one issued reaches succeeded in its one call, at every rate',
      figure: pairs.map(({ h }) => `${h.rate}/s: ${h.load.issued} issued, ${h.load.finals.succeeded ?? 0} succeeded, ${lostCommands(h.load)} not`).join('; '),
      met: pairs.every(({ h }) => h.load.issued > 0 && lostCommands(h.load) === 0),
    },
    {
      target: 'rate sustained: final answers within the load window >= 0.95 x offered, at every rate',
      figure: pairs.map(({ h }) => `${h.rate}/s: ${sustained(h).toFixed(3)} x`).join('; '),
      met: pairs.every(({ h }) => sustained(h) >= 0.95),
    },
    {
      target: `round trip p99 < ${P99_BOUND_MS} ms at every rate (API call to final state)`,
      figure: pairs.map(({ h, b }) => `${h.rate}/s: ${p99(h).toFixed(1)} ms (relay ${p99(b).toFixed(1)} ms, ${(p99(h) / p99(b)).toFixed(1)} x)`).join('; '),
      met: pairs.every(({ h }) => p99(h) < P99_BOUND_MS),
    },
  ];
}
