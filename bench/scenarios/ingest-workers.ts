/**
 * The `ingest` scenario's workers phase (issue 17): what going multi-process
 * costs and gives on this machine. The same saturating load (the closed-loop
 * driver, batches of records) goes to a hub of one process (PULSEWIRE_WORKERS=1,
 * no NATS: today's hub) and to a hub of N workers (a primary, N workers sharing
 * the port, and the nats-server the primary runs), each fresh with its managed
 * influxd. Measured: readings/s into InfluxDB (load start until every spool is
 * empty), sent = ACKed = stored, and CPU-s per million readings summed over the
 * hub's processes (primary and workers) with nats-server's added, influxd's
 * apart. Nothing is pinned, one process included: a hub of workers is there to
 * use every core, so each configuration gets the machine as a user would run
 * it; the single-process figures of the pinned phases above keep their meaning.
 * Configurations alternate round after round (the order turning each round), so
 * a neighbour's burst lands on one run, and ratios are per round, then the median.
 */
import type { ConnectResult, RunResult } from '../lib/driver.js';
import { BENCH_ENROLLMENT_KEY, countStored, startHubProcess } from '../lib/hub-process.js';
import { CpuMeter, median, until, type CpuShares, type Placement } from '../lib/proc.js';
import { startDriver } from './ceilings.js';

export type WorkersPhaseOptions = {
  devices: number;
  batch: number;
  window: number;
  /** Worker counts compared; the first is the baseline of the ratios (1: one process, no NATS). */
  workers: number[];
  workersSeconds: number;
  workersRounds: number;
  drainTimeoutS: number;
  hubEntry?: string[];
  log: (line: string) => void;
};

export type WorkersRun = {
  round: number;
  workers: number;
  connected: number;
  readingsSent: number;
  readingsAcked: number;
  stored: number;
  lost: number;
  nonZeroAcks: number;
  unacknowledged: number;
  ackedPerSecond: number;
  /** Points the hub's writers had confirmed (all workers), load start until every spool was empty. */
  influxPointsPerSecond: number;
  drainSeconds: number;
  /** CPU-s per million readings ACKed: the hub's processes (primary and workers), nats-server, influxd, the driver. */
  cpuPerMillion: { hub: number; nats: number; influxd: number; driver: number };
  cpu: CpuShares;
};

export type WorkersSummary = {
  workers: number;
  /** Medians over the rounds. */
  influxPointsPerSecond: number;
  cpuPerMillionHubAndNats: number;
  /** Medians of the per-round ratios to the first configuration. */
  vsFirst: { influxPointsPerSecond: number; cpuPerMillionHubAndNats: number };
  perRound: number[];
};

export type WorkersPhaseResult = { runs: WorkersRun[]; summary: WorkersSummary[]; placement: string };

const UNPINNED: Placement = { pinned: false, subject: 'any', load: 'any', note: 'not pinned' };

async function spoolEmpty(metrics: () => Promise<Map<string, number>>, timeoutS: number): Promise<boolean> {
  return until(async () => (await metrics()).get('pulsewire_spool_entries') === 0, timeoutS * 1000, 100);
}

async function runOne(o: WorkersPhaseOptions, workers: number, round: number): Promise<WorkersRun> {
  const hub = await startHubProcess({ entry: o.hubEntry, ...(workers > 1 ? { workers } : {}) });
  const driver = startDriver(UNPINNED);
  try {
    const meter = new CpuMeter();
    meter.add('hub', () => hub.processes().hub);
    if (workers > 1) meter.add('nats-server', () => hub.processes().natsServer);
    meter.add('influxd', () => hub.processes().influxd);
    meter.add('driver', driver.pid);
    const { connected } = await driver.call<ConnectResult>('connect', { url: hub.deviceUrl, devices: o.devices, prefix: 'wk-', enrollmentKey: BENCH_ENROLLMENT_KEY });
    await spoolEmpty(() => hub.metrics(), o.drainTimeoutS);
    const written0 = (await hub.metrics()).get('pulsewire_points_written_total') ?? 0;
    const mark = meter.mark();
    const run = await driver.call<RunResult>('run', { mode: 'saturate', batch: o.batch, seconds: o.workersSeconds, names: 'w', window: o.window });
    const drained = await spoolEmpty(() => hub.metrics(), o.drainTimeoutS);
    const drainedAt = Date.now();
    const cpu = meter.since(mark);
    if (!drained) o.log(`  workers ${workers}: the spool did not drain within ${o.drainTimeoutS} s`);
    const written = ((await hub.metrics()).get('pulsewire_points_written_total') ?? 0) - written0;
    await driver.call('close');
    const stored = await countStored(hub.databaseUrl, 'w');
    const perMillion = (s: number | undefined) => (s === undefined ? NaN : s / (run.readingsAcked / 1e6));
    const nonZeroAcks = Object.entries(run.acks).reduce((n, [code, count]) => n + (code === '0' ? 0 : count), 0);
    const result: WorkersRun = {
      round, workers, connected, readingsSent: run.readingsSent, readingsAcked: run.readingsAcked, stored, lost: run.readingsAcked - stored,
      nonZeroAcks, unacknowledged: run.unacknowledged, ackedPerSecond: (run.ackedInWindow * o.batch) / run.seconds,
      influxPointsPerSecond: written / ((drainedAt - run.startedAt) / 1000), drainSeconds: (drainedAt - run.stoppedAt) / 1000,
      cpuPerMillion: { hub: perMillion(cpu.seconds.hub), nats: workers > 1 ? perMillion(cpu.seconds['nats-server']) : 0, influxd: perMillion(cpu.seconds.influxd), driver: perMillion(cpu.seconds.driver) },
      cpu,
    };
    o.log(`  round ${round}, ${workers === 1 ? 'one process' : `${workers} workers`}: ${Math.round(result.influxPointsPerSecond)} readings/s into InfluxDB, sent ${run.readingsSent}, stored ${stored}, lost ${result.lost}; CPU-s/M hub ${result.cpuPerMillion.hub.toFixed(2)} + nats ${result.cpuPerMillion.nats.toFixed(2)}; ${CpuMeter.line(cpu)}`);
    return result;
  } finally {
    await driver.close();
    await hub.stop();
  }
}

export async function measureWorkers(o: WorkersPhaseOptions): Promise<WorkersPhaseResult> {
  const runs: WorkersRun[] = [];
  o.log(`  workers phase: ${o.workers.join(' vs ')} workers, ${o.workersRounds} rounds of ${o.workersSeconds} s, nothing pinned`);
  for (let round = 1; round <= o.workersRounds; round++) {
    const turn = (round - 1) % o.workers.length;
    for (const workers of [...o.workers.slice(turn), ...o.workers.slice(0, turn)]) runs.push(await runOne(o, workers, round));
  }
  const first = o.workers[0]!;
  const hubAndNats = (r: WorkersRun) => r.cpuPerMillion.hub + r.cpuPerMillion.nats;
  const summary = o.workers.map((workers): WorkersSummary => {
    const mine = runs.filter((r) => r.workers === workers);
    const ratios = (f: (r: WorkersRun) => number) => mine.map((r) => f(r) / f(runs.find((b) => b.round === r.round && b.workers === first)!));
    const perRound = ratios((r) => r.influxPointsPerSecond);
    return {
      workers,
      influxPointsPerSecond: median(mine.map((r) => r.influxPointsPerSecond)),
      cpuPerMillionHubAndNats: median(mine.map(hubAndNats)),
      vsFirst: { influxPointsPerSecond: median(perRound), cpuPerMillionHubAndNats: median(ratios(hubAndNats)) },
      perRound,
    };
  });
  return { runs, summary, placement: 'not pinned: hub processes, nats-server, influxd and the driver share both cores' };
}
