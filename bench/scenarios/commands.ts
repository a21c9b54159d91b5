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
import { SETTLE_S, type CommandLoadArgs, type CommandLoadResult } from '../lib/command-load.js';
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
  /** Times the whole sequence of rates runs (hub and relay alternate within each). */
  rounds: number;
  /** Each phase's load; the first warmupS are counted but not in the percentiles. */
  phaseSeconds: number;
  warmupS: number;
  /** Seconds after the warm-up that the round trip "from settledFromS" leaves out (command-load.ts, SETTLE_S). */
  settleS: number;
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
  devices: 10_000, rates: [100, 1_000], rounds: 3, phaseSeconds: 20, warmupS: 2, settleS: SETTLE_S, resultDelayMs: 0, waitS: 30, ramp: 600,
  telemetryRate: 0.0001, pingIntervalMs: 25_000, maxSockets: 1_000, pin: true, log: () => {},
};

export type PhaseFigures = {
  round: number;
  rate: number;
  load: CommandLoadResult;
  /** Mean CPU % of one core of the subject over the phase, and its RSS (median and peak of 0.5 s samples). */
  cpuPercent: number;
  /** The subject's CPU time per command issued: what a command costs it, whatever the neighbours did to the wall clock. */
  cpuMsPerCommand: number;
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
type Held = { subject: Subject; fleet: Remote; deviceIds: string[]; figures: SubjectFigures };

/** Samples the subject's RSS every 0.5 s while `work` runs. */
async function sampled<T>(pid: number, work: () => Promise<T>): Promise<{ value: T; cpuSeconds: number; wallSeconds: number; rss: number[] }> {
  const rss: number[] = [vmRssBytes(pid)];
  const timer = setInterval(() => rss.push(vmRssBytes(pid)), 500);
  const cpu0 = cpuSeconds(pid);
  const t0 = performance.now();
  try {
    const value = await work();
    return { value, cpuSeconds: cpuSeconds(pid) - cpu0, wallSeconds: (performance.now() - t0) / 1000, rss };
  } finally {
    clearInterval(timer);
  }
}

/** Connects the subject's own fleet (own process) and waits until every device is in. */
async function connectFleet(subject: Subject, o: CommandsOptions, place: Placement): Promise<Held> {
  const prefix = `cmd-${subject.name}-`;
  const fleet = startFleetWorker(place);
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
  return {
    subject, fleet, deviceIds: fleetIds(prefix, o.devices),
    figures: { connected: ready.connected, rampS, connectFailures: ready.connectFailures, rssHeldBytes: vmRssBytes(subject.pid), phases: [] },
  };
}

async function phase(held: Held, load: Remote, rate: number, round: number, o: CommandsOptions): Promise<PhaseFigures> {
  const { subject, fleet } = held;
  const before = await fleet.call<FleetSnapshot>('snapshot');
  const args: CommandLoadArgs = {
    baseUrl: subject.baseUrl, token: subject.token, deviceIds: held.deviceIds, commandsPerSecond: rate, seconds: o.phaseSeconds, waitS: o.waitS,
    name: 'echo', args: { delayMs: o.resultDelayMs }, warmupS: o.warmupS, settleS: o.settleS, maxSockets: o.maxSockets,
  };
  const { value: result, cpuSeconds: cpu, wallSeconds, rss } = await sampled(subject.pid, () => load.call<CommandLoadResult>('run', args));
  const after = await fleet.call<FleetSnapshot>('snapshot');
  const figures: PhaseFigures = {
    round, rate, load: result, cpuPercent: (cpu / wallSeconds) * 100, cpuMsPerCommand: (cpu * 1000) / Math.max(1, result.issued),
    rssMedianBytes: median(rss), rssPeakBytes: Math.max(...rss),
    disconnects: after.disconnects - before.disconnects, connectedAfter: after.connected, answered: after.commandsAnswered - before.commandsAnswered,
  };
  const rt = result.roundTripMs;
  o.log(`  round ${round}, ${subject.name} at ${rate}/s: ${result.issued} issued, ${result.finals.succeeded ?? 0} succeeded, p50 ${rt.p50.toFixed(1)} ms, p99 ${rt.p99.toFixed(1)} ms, CPU ${figures.cpuPercent.toFixed(0)} % (${figures.cpuMsPerCommand.toFixed(2)} ms/command), load lag p99 ${result.issueLagMs.p99.toFixed(0)} ms`);
  return figures;
}

/**
 * Hub and relay each hold their own fleet at the same time (each is its own process with its own open-files limit),
 * and the phases alternate between them, round after round: a neighbour's burst on this shared machine then lands on
 * one phase, and the per-round ratios and their median show it instead of skewing the whole comparison.
 */
export async function runCommands(options: Partial<CommandsOptions> = {}): Promise<CommandsResult> {
  const o: CommandsOptions = { ...COMMANDS_DEFAULTS, ...options };
  const place = placement(o.pin);
  const machine = describeMachine();
  o.log(`commands: ${o.devices} devices each on the hub and on the relay, ${o.rounds} rounds of ${o.rates.join(' then ')} commands/s for ${o.phaseSeconds} s each (hub, then relay), RESULT after ${o.resultDelayMs} ms; ${place.note}`);
  const hubProc = await startHubProcess({ entry: o.hubEntry, env: { PULSEWIRE_PING_INTERVAL_MS: String(o.pingIntervalMs) } });
  const relayProc = new Remote(RELAY_MODULE);
  const load = new Remote(LOAD_MODULE);
  const held: Held[] = [];
  try {
    pin(hubProc.pid, place.subject, place);
    pin(relayProc.pid, place.subject, place);
    pin(load.pid, place.load, place);
    const { port } = await relayProc.call<{ port: number }>('start', { pingIntervalMs: o.pingIntervalMs });
    const subjects: Subject[] = [
      { name: 'hub', pid: hubProc.pid, baseUrl: hubProc.baseUrl, deviceUrl: hubProc.deviceUrl, token: BENCH_OPERATOR_TOKEN },
      { name: 'relay', pid: relayProc.pid, baseUrl: `http://127.0.0.1:${port}`, deviceUrl: `ws://127.0.0.1:${port}/v1/device` },
    ];
    // One ramp at a time: both subjects share the measured core.
    for (const subject of subjects) held.push(await connectFleet(subject, o, place));
    for (let round = 1; round <= o.rounds; round++) {
      for (const rate of o.rates) {
        for (const h of held) {
          h.figures.phases.push(await phase(h, load, rate, round, o));
          await sleep(1000);
        }
      }
    }
    for (const h of held) await h.fleet.call('stop');
    await relayProc.call('stop');
  } finally {
    for (const h of held) await h.fleet.close();
    await load.close();
    await relayProc.close();
    await hubProc.stop();
  }
  const { log: _l, hubEntry: _h, ...recorded } = o;
  const result: CommandsResult = { scenario: 'commands', machine, placement: place, options: recorded, hub: held[0]!.figures, relay: held[1]!.figures, targets: [] };
  result.targets = commandsTargets(result);
  return result;
}

/**
 * Commands the subject took and did not bring to `succeeded` in one call: other finals, 202s, HTTP and socket
 * errors, no answer. Requests still queued in the load's own pool at the end never reached it and are not counted.
 */
export function lostCommands(l: CommandLoadResult): number {
  return l.issued - l.neverSent - (l.finals.succeeded ?? 0);
}

/** Final answers within the load window over the offered rate. */
export const sustained = (p: PhaseFigures): number => p.load.completedInWindowPerSecond / p.rate;

export const P99_BOUND_MS = 100;

/** Per rate, the hub's and the relay's phase of each round side by side. */
export function byRate(r: CommandsResult): Array<{ rate: number; rounds: Array<{ h: PhaseFigures; b: PhaseFigures | undefined }> }> {
  return r.options.rates.map((rate) => ({
    rate,
    rounds: r.hub.phases.filter((h) => h.rate === rate).map((h) => ({ h, b: r.relay.phases.find((b) => b.rate === rate && b.round === h.round) })),
  }));
}

const p99 = (p: PhaseFigures | undefined) => p?.load.roundTripMs.p99 ?? NaN;
const settledP99 = (p: PhaseFigures | undefined) => p?.load.roundTripSettledMs.p99 ?? NaN;
/** Seconds into a phase from which roundTripSettledMs counted in this run (warm-up, then settleS). */
export const settledFromS = (r: CommandsResult): number => r.options.warmupS + r.options.settleS;
const list = (xs: number[], digits: number) => xs.map((x) => x.toFixed(digits)).join(', ');

export function commandsTargets(r: CommandsResult): Target[] {
  const rates = byRate(r);
  const settledFrom = settledFromS(r);
  return [
    {
      target: 'no command lost: every one issued reaches succeeded in its one call, at every rate, every round',
      figure: rates.map(({ rate, rounds }) => {
        const issued = rounds.reduce((n, { h }) => n + h.load.issued, 0);
        const neverSent = rounds.reduce((n, { h }) => n + h.load.neverSent, 0);
        return `${rate}/s: ${issued} issued, ${rounds.reduce((n, { h }) => n + lostCommands(h.load), 0)} not succeeded${neverSent ? `, ${neverSent} never sent (load overloaded)` : ''}`;
      }).join('; '),
      met: r.hub.phases.length > 0 && r.hub.phases.every((h) => h.load.issued > 0 && h.load.neverSent === 0 && lostCommands(h.load) === 0),
    },
    {
      target: 'rate sustained: final answers within the load window >= 0.95 x offered (median of rounds), at every rate',
      figure: rates.map(({ rate, rounds }) => `${rate}/s: ${median(rounds.map(({ h }) => sustained(h))).toFixed(3)} x (rounds ${list(rounds.map(({ h }) => sustained(h)), 3)})`).join('; '),
      met: rates.every(({ rounds }) => median(rounds.map(({ h }) => sustained(h))) >= 0.95),
    },
    {
      target: `round trip p99 < ${P99_BOUND_MS} ms (median of rounds), at every rate (API call to final state)`,
      figure: rates.map(({ rate, rounds }) => `${rate}/s: ${median(rounds.map(({ h }) => p99(h))).toFixed(1)} ms (rounds ${list(rounds.map(({ h }) => p99(h)), 1)}; relay ${median(rounds.map(({ b }) => p99(b))).toFixed(1)} ms; hub/relay per round ${list(rounds.map(({ h, b }) => p99(h) / p99(b)), 1)}; from ${settledFrom} s into the phase ${median(rounds.map(({ h }) => settledP99(h))).toFixed(1)} ms)`).join('; '),
      met: rates.every(({ rounds }) => median(rounds.map(({ h }) => p99(h))) < P99_BOUND_MS),
    },
  ];
}
