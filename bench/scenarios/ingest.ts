/**
 * Scenario `ingest` (issue 4, scenario 1): the built hub as its own process
 * with its managed influxd, driven by 1,000 devices sending batches of 10
 * records as fast as the hub ACKs them, then one-record messages (the
 * per-message cost); side by side with ceiling A, ceiling B and the Node-RED
 * peer (peer.ts), all measured in the same run. Zero loss is checked: sent =
 * acknowledged = stored, counted in InfluxDB once the spool has drained.
 * Then (issue 17) the workers phase (ingest-workers.ts): one hub process
 * against a hub of workers, unpinned, round after round.
 */
import type { ConnectResult, RunArgs, RunResult } from '../lib/driver.js';
import { BENCH_ENROLLMENT_KEY, countStored, MetricsSampler, startHubProcess, type HubProcess } from '../lib/hub-process.js';
import { describeMachine } from '../lib/machine.js';
import type { ResultHead, Target } from '../lib/report.js';
import { cpuSeconds, findChild, pin, placement, until, type Placement } from '../lib/proc.js';
import { loadFigures, measureCeilingA, measureCeilingB, startDriver, type CeilingAResult, type CeilingBFigures, type LoadFigures } from './ceilings.js';
import { measureWorkers, type WorkersPhaseResult } from './ingest-workers.js';
import { measureNodeRedPeer, type PeerFigures } from './peer.js';

/** The hub's default PULSEWIRE_SPOOL_MAX_BYTES (the bench does not change it). */
const SPOOL_DEFAULT_MAX_BYTES = 2 ** 30;

export type IngestOptions = {
  devices: number;
  batch: number;
  /** Length of each batch-load phase (hub, ceiling A, ceiling B). */
  seconds: number;
  /** Length of the one-record phases. */
  singleSeconds: number;
  /** Length of the Node-RED peer's load (batches, as the hub's batch phase). */
  peerSeconds: number;
  window: number;
  pin: boolean;
  /** How long to wait for the hub's spool to drain after a phase. */
  drainTimeoutS: number;
  /** Workers phase (issue 17): hub worker counts compared, the first the baseline (1: one process); [] skips it. */
  workers: number[];
  /** Length of each workers-phase run (batches, saturating), and how many rounds of every count. */
  workersSeconds: number;
  workersRounds: number;
  /** Node arguments that run the hub (default the built dist). */
  hubEntry?: string[];
  log: (line: string) => void;
};

export const INGEST_DEFAULTS: IngestOptions = {
  devices: 1000, batch: 10, seconds: 60, singleSeconds: 20, peerSeconds: 30, window: 32, pin: true, drainTimeoutS: 300,
  workers: [1, 2], workersSeconds: 30, workersRounds: 3, log: () => {},
};

export type HubPhase = LoadFigures & {
  readingsSent: number;
  stored: number;
  /** readingsAcked - stored (and readingsSent - readingsAcked must be 0 too). */
  lost: number;
  acks: Record<string, number>;
  /** Points InfluxDB confirmed to the hub per second, from load start until the spool was empty. */
  influxPointsPerSecond: number;
  /** The same within the load window only. */
  influxPointsPerSecondDuringLoad: number;
  /** Seconds the spool took to empty after the load stopped. */
  drainSeconds: number;
  spoolPeakReadings: number;
  spoolPeakBytes: number;
  /** Spool growth while the load was on (bytes/s), and how long PULSEWIRE_SPOOL_MAX_BYTES (default 1 GiB) lasts at that rate. */
  spoolGrowthBytesPerSecond: number;
  secondsUntilSpoolFull: number | undefined;
  /** /metrics response time while the load was on: the hub's event-loop queue, roughly. */
  scrapeMsMedianDuringLoad: number;
  scrapeMsMaxDuringLoad: number;
  influxdCpuSecondsPerMillionReadings: number;
  /** The hub's /metrics over the phase (every 500 ms), for the JSON: spool depth and InfluxDB confirmations in time. */
  samples: MetricsSampler['samples'];
};

export type { Target } from '../lib/report.js';

export type IngestResult = ResultHead<'ingest', IngestOptions> & {
  ceilingA: CeilingAResult;
  ceilingB: CeilingBFigures;
  hub: { batch: HubPhase; single: HubPhase };
  peer: PeerFigures;
  /** The workers phase (absent when skipped, or in results from before issue 17). */
  workers?: WorkersPhaseResult;
};

/** Linear interpolation of a sampled counter at time `at`. */
function valueAt(samples: Array<{ at: number; pointsWritten: number }>, at: number): number {
  let before = samples[0];
  for (const s of samples) {
    if (s.at <= at) before = s;
    else {
      if (!before) return s.pointsWritten;
      return before.pointsWritten + ((s.pointsWritten - before.pointsWritten) * (at - before.at)) / Math.max(1, s.at - before.at);
    }
  }
  return before?.pointsWritten ?? 0;
}

async function spoolEmpty(hub: HubProcess, timeoutS: number): Promise<boolean> {
  return until(async () => (await hub.metrics()).get('pulsewire_spool_entries') === 0, timeoutS * 1000, 100);
}

async function hubPhase(hub: HubProcess, driver: ReturnType<typeof startDriver>, influxdPid: number | undefined, args: RunArgs, o: IngestOptions): Promise<HubPhase> {
  await spoolEmpty(hub, o.drainTimeoutS);
  const sampler = new MetricsSampler(hub, 500);
  await sampler.sample();
  const cpu0 = cpuSeconds(hub.pid);
  const influxCpu0 = influxdPid ? cpuSeconds(influxdPid) : 0;
  const written0 = sampler.samples[0]?.pointsWritten ?? 0;
  const started = Date.now();
  const run = await driver.call<RunResult>('run', args);
  const drained = await spoolEmpty(hub, o.drainTimeoutS);
  const drainedAt = Date.now();
  await sampler.sample();
  sampler.stop();
  const hubCpu = cpuSeconds(hub.pid) - cpu0;
  const influxCpu = influxdPid ? cpuSeconds(influxdPid) - influxCpu0 : NaN;
  if (!drained) o.log(`  the spool did not drain within ${o.drainTimeoutS} s`);
  const stored = await countStored(hub.databaseUrl, args.names);
  const figures = loadFigures(run, args.batch, hubCpu, (Date.now() - started) / 1000);
  const writtenAtEnd = sampler.samples.at(-1)!.pointsWritten;
  const growth = sampler.peak('spoolBytes', run.startedAt, run.stoppedAt + 1000) / run.seconds;
  return {
    ...figures,
    readingsSent: run.readingsSent,
    stored,
    lost: run.readingsAcked - stored,
    acks: run.acks,
    influxPointsPerSecond: (writtenAtEnd - written0) / ((drainedAt - run.startedAt) / 1000),
    influxPointsPerSecondDuringLoad: (valueAt(sampler.samples, run.stoppedAt) - valueAt(sampler.samples, run.startedAt)) / run.seconds,
    drainSeconds: (drainedAt - run.stoppedAt) / 1000,
    spoolPeakReadings: sampler.peak('spoolReadings'),
    spoolPeakBytes: sampler.peak('spoolBytes'),
    spoolGrowthBytesPerSecond: growth,
    secondsUntilSpoolFull: growth > 0 ? SPOOL_DEFAULT_MAX_BYTES / growth : undefined,
    scrapeMsMedianDuringLoad: sampler.median('scrapeMs', run.startedAt, run.stoppedAt),
    scrapeMsMaxDuringLoad: sampler.peak('scrapeMs', run.startedAt, run.stoppedAt),
    samples: sampler.samples,
    influxdCpuSecondsPerMillionReadings: influxCpu / (run.readingsAcked / 1e6),
  };
}

async function measureHub(o: IngestOptions, place: Placement): Promise<{ batch: HubPhase; single: HubPhase }> {
  const hub = await startHubProcess({ entry: o.hubEntry });
  const driver = startDriver(place);
  try {
    pin(hub.pid, place.subject, place);
    const influxdPid = findChild(hub.pid, 'influxd');
    const connected = await driver.call<ConnectResult>('connect', { url: hub.deviceUrl, devices: o.devices, prefix: 'bench-', enrollmentKey: BENCH_ENROLLMENT_KEY });
    o.log(`  hub: ${connected.connected} devices connected in ${connected.seconds.toFixed(1)} s`);
    const batch = await hubPhase(hub, driver, influxdPid, { mode: 'saturate', batch: o.batch, seconds: o.seconds, names: 'b', window: o.window }, o);
    o.log(`  hub, batches of ${o.batch}: ${Math.round(batch.readingsPerSecond)} readings/s ACKed, ${Math.round(batch.influxPointsPerSecond)} points/s into InfluxDB, lost ${batch.lost}`);
    const single = await hubPhase(hub, driver, influxdPid, { mode: 'saturate', batch: 1, seconds: o.singleSeconds, names: 'm', window: o.window }, o);
    o.log(`  hub, one record: ${Math.round(single.messagesPerSecond)} messages/s ACKed, lost ${single.lost}`);
    await driver.call('close');
    return { batch, single };
  } finally {
    await driver.close();
    await hub.stop();
  }
}

/** The most frequent Node-RED error line, with its count. */
function topError(errors: Record<string, number>): string {
  const [line, n] = Object.entries(errors).sort((a, b) => b[1] - a[1])[0] ?? ['no error logged', 0];
  return n > 0 ? `${n} x "${line.slice(0, 100)}"` : line;
}

export function ingestTargets(a: CeilingAResult, b: CeilingBFigures, hub: { batch: HubPhase; single: HubPhase }, peer: PeerFigures): Target[] {
  const r = (x: number, y: number) => (y > 0 ? x / y : 0);
  const hubVsB = r(hub.batch.influxPointsPerSecond, b.pointsPerSecond);
  const singleVsA = r(hub.single.messagesPerSecond, a.single.messagesPerSecond);
  const cpuVsA = r(hub.batch.cpuSecondsPerMillionReadings, a.batch.cpuSecondsPerMillionReadings);
  const lossFree = (p: HubPhase) => p.lost === 0 && p.readingsSent === p.readingsAcked && p.unacknowledged === 0 && p.nonZeroAcks === 0;
  return [
    { target: 'ingest through the hub (into InfluxDB) >= 0.7 x ceiling B', figure: `${hubVsB.toFixed(2)} x (${Math.round(hub.batch.influxPointsPerSecond)} vs ${Math.round(b.pointsPerSecond)} points/s, load start to spool empty; ${Math.round(hub.batch.influxPointsPerSecondDuringLoad)}/s while the load was on)`, met: hubVsB >= 0.7 },
    {
      target: 'hub CPU per million readings, batch phase, <= 4 x ceiling A\'s (issue 19)',
      figure: `${cpuVsA.toFixed(2)} x (${hub.batch.cpuSecondsPerMillionReadings.toFixed(2)} vs ${a.batch.cpuSecondsPerMillionReadings.toFixed(2)} CPU-s per million readings; the hub's own process, influxd not counted)`,
      met: cpuVsA > 0 && cpuVsA <= 4,
    },
    { target: 'ACKed one-record messages >= 0.5 x ceiling A', figure: `${singleVsA.toFixed(2)} x (${Math.round(hub.single.messagesPerSecond)} vs ${Math.round(a.single.messagesPerSecond)} messages/s)`, met: singleVsA >= 0.5 },
    { target: 'ACKed one-record messages >= 20,000/s', figure: `${Math.round(hub.single.messagesPerSecond)}/s`, met: hub.single.messagesPerSecond >= 20_000 },
    { target: 'zero loss: sent = acknowledged = stored (both phases)', figure: `lost ${hub.batch.lost + hub.single.lost}, unACKed ${hub.batch.unacknowledged + hub.single.unacknowledged}, non-zero ACKs ${hub.batch.nonZeroAcks + hub.single.nonZeroAcks}`, met: lossFree(hub.batch) && lossFree(hub.single) },
    {
      target: 'ingest >= 5 x the Node-RED peer (points/s into InfluxDB)',
      figure: `${r(hub.batch.influxPointsPerSecond, peer.pointsPerSecond).toFixed(2)} x (${Math.round(hub.batch.influxPointsPerSecond)} vs ${Math.round(peer.pointsPerSecond)} points/s; the peer lost ${peer.lost} of ${peer.readingsSent} readings (${topError(peer.errors)}) and stored ${peer.delayedReadings} after the load stopped, the last ${peer.lastStoredAfterStopS.toFixed(1)} s after)`,
      met: r(hub.batch.influxPointsPerSecond, peer.pointsPerSecond) >= 5,
    },
  ];
}

export async function runIngest(options: Partial<IngestOptions> = {}): Promise<IngestResult> {
  const o: IngestOptions = { ...INGEST_DEFAULTS, ...options };
  const place = placement(o.pin);
  const machine = describeMachine();
  o.log(`ingest: ${o.devices} devices, batch ${o.batch}, ${o.seconds} s per batch phase, ${o.singleSeconds} s one-record; ${place.note}`);
  o.log('  ceiling A (bare ws + cbor-x)...');
  const ceilingA = await measureCeilingA(o, place);
  o.log('  ceiling B (node-influx alone)...');
  const ceilingB = await measureCeilingB(o, place);
  o.log('  hub...');
  const hub = await measureHub(o, place);
  o.log('  Node-RED peer...');
  const peer = await measureNodeRedPeer(o, place);
  o.log(`  Node-RED peer: ${Math.round(peer.pointsPerSecond)} points/s into InfluxDB, lost ${peer.lost}, delayed ${peer.delayedReadings}`);
  const workers = o.workers.length > 0 ? await measureWorkers(o) : undefined;
  const { log: _log, hubEntry: _entry, ...recorded } = o;
  return {
    scenario: 'ingest', machine, placement: place, options: recorded, ceilingA, ceilingB, hub, peer, ...(workers ? { workers } : {}),
    targets: [...ingestTargets(ceilingA, ceilingB, hub, peer), ...(workers ? workersTargets(workers) : [])],
  };
}

/** On two cores a second worker has at most the second core, shared with influxd, nats-server and the driver (as `cluster`'s two nodes). */
export const TWO_WORKERS_BOUND = 1.3;

export function workersTargets(w: WorkersPhaseResult): Target[] {
  const [first, ...others] = w.summary;
  const two = others.find((s) => s.workers === 2);
  const name = (n: number) => (n === 1 ? 'one process' : `${n} workers`);
  const lossFree = w.runs.every((r) => r.lost === 0 && r.readingsSent === r.readingsAcked && r.unacknowledged === 0 && r.nonZeroAcks === 0);
  return [
    ...(first && two ? [{
      target: `two workers ingest >= ${TWO_WORKERS_BOUND} x ${name(first.workers)} on this 2-core machine (readings/s into InfluxDB, median of per-round ratios)`,
      figure: `${two.vsFirst.influxPointsPerSecond.toFixed(2)} x (rounds ${two.perRound.map((x) => x.toFixed(2)).join(', ')}; ${Math.round(two.influxPointsPerSecond)} vs ${Math.round(first.influxPointsPerSecond)}/s, medians; CPU-s per M readings, hub processes + nats-server: ${two.cpuPerMillionHubAndNats.toFixed(2)} vs ${first.cpuPerMillionHubAndNats.toFixed(2)}, ${two.vsFirst.cpuPerMillionHubAndNats.toFixed(2)} x)`,
      met: two.vsFirst.influxPointsPerSecond >= TWO_WORKERS_BOUND,
    }] : []),
    {
      target: 'zero loss with workers: sent = acknowledged = stored, every configuration, every round',
      figure: w.summary.map((s) => {
        const runs = w.runs.filter((r) => r.workers === s.workers);
        return `${name(s.workers)}: ${runs.reduce((n, r) => n + r.readingsSent, 0)} sent, ${runs.reduce((n, r) => n + r.stored, 0)} stored, lost ${runs.reduce((n, r) => n + r.lost, 0)}`;
      }).join('; '),
      met: lossFree,
    },
  ];
}
