/**
 * Probe (not a scenario; prints JSON, writes nothing else unless --cpu-prof):
 * where the hub's send-to-ACK tail comes from at a fixed rate. It runs the
 * built hub (pinned like the latency scenario) under the driver's "rate" mode
 * and reports the driver's latency figures next to the hub's own view of its
 * event loop over the same window: garbage-collector time by kind and event-
 * loop delay (prom-client's default metrics on /metrics). With --cpu-prof DIR
 * the hub writes a V8 CPU profile; `node bench/probes/profile-stalls.mjs FILE`
 * then attributes the busy stretches (the stalls that ACKs wait behind).
 *
 *   tsx bench/probes/latency-stalls.ts [--root DIR] [--rate MSG_PER_S] [--seconds S] [--batch N] [--devices N] [--cpu-prof DIR] [--env K=V,...]
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { RunResult } from '../lib/driver.js';
import { BENCH_ENROLLMENT_KEY, parseEnvList, startHubProcess, type HubProcess, type Metrics } from '../lib/hub-process.js';
import { cpuSeconds, pin, placement, sleep, until } from '../lib/proc.js';
import { startDriver } from '../scenarios/ceilings.js';
import { countAbove, histogramDelta, quantileBound, readHistogram, type HistogramCounts } from '../lib/prom-histogram.js';

const { values } = parseArgs({
  options: {
    root: { type: 'string' }, rate: { type: 'string' }, seconds: { type: 'string' }, batch: { type: 'string' },
    devices: { type: 'string' }, 'cpu-prof': { type: 'string' }, env: { type: 'string' },
  },
});
const root = path.resolve(values.root ?? '.');
const rate = Number(values.rate ?? 3500);
const seconds = Number(values.seconds ?? 20);
const batch = Number(values.batch ?? 10);
const prof = values['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${values['cpu-prof']}`] : [];
const env = parseEnvList(values.env);

/** Sums of the GC histogram by kind (seconds) and the event-loop delay gauges, from /metrics text. */
async function loopView(hub: HubProcess): Promise<{ gc: Record<string, number>; lagP99: number | undefined; lagMax: number | undefined; commits: HistogramCounts }> {
  const text = await hub.metricsText();
  const commits = readHistogram(text, 'pulsewire_spool_commit_seconds');
  const gc: Record<string, number> = {};
  for (const m of text.matchAll(/^pulsewire_nodejs_gc_duration_seconds_sum\{[^}]*kind="(\w+)"[^}]*\} (\S+)$/gm)) gc[m[1]!] = Number(m[2]);
  const gauge = (name: string) => { const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text); return m ? Number(m[1]) : undefined; };
  return { gc, lagP99: gauge('pulsewire_nodejs_eventloop_lag_p99_seconds'), lagMax: gauge('pulsewire_nodejs_eventloop_lag_max_seconds'), commits };
}

const place = placement(true);
const hub = await startHubProcess({ entry: [...prof, path.join(root, 'dist/src/main.js')], env });
pin(hub.pid, place.subject, place);
const driver = startDriver(place);
try {
  await driver.call('connect', { url: hub.deviceUrl, devices: Number(values.devices ?? 1000), prefix: 'stall-', enrollmentKey: BENCH_ENROLLMENT_KEY });
  await sleep(1000);
  const before = await loopView(hub);
  const pacedBefore = (await hub.metrics()).get('pulsewire_acks_paced_total') ?? 0;
  // The spool's backlog over the window: the pacer holds ACKs above its high-water mark.
  let spoolPeak = 0;
  // prom-client's event-loop delay gauges cover the time since the previous scrape: one value per second of the window.
  const lagMaxPerSecond: number[] = [];
  const sampler = setInterval(() => {
    void hub.metrics().then((m) => {
      spoolPeak = Math.max(spoolPeak, m.get('pulsewire_spool_readings') ?? 0);
      lagMaxPerSecond.push((m.get('pulsewire_nodejs_eventloop_lag_max_seconds') ?? NaN) * 1000);
    }, () => {});
  }, 1000); // each scrape costs the hub's loop (prom-client's process metrics read /proc): once a second
  const cpu0 = cpuSeconds(hub.pid);
  const run = await driver.call<RunResult>('run', {
    mode: 'rate', batch, seconds, names: 'p', window: 32, messagesPerSecond: rate, latencyAfterMs: 3000, drainMs: 60_000,
  });
  clearInterval(sampler);
  const after = await loopView(hub);
  const paced = ((await hub.metrics()).get('pulsewire_acks_paced_total') ?? 0) - pacedBefore;
  const cpu = cpuSeconds(hub.pid) - cpu0;
  const gcSeconds = Object.fromEntries(Object.entries(after.gc).map(([k, v]) => [k, +(v - (before.gc[k] ?? 0)).toFixed(3)]));
  const gcTotal = Object.values(gcSeconds).reduce((a, b) => a + b, 0);
  const commits = histogramDelta(before.commits, after.commits);
  const ms = (s: number | undefined) => (s === undefined ? undefined : s * 1000);
  console.log(JSON.stringify({
    root, rate, seconds, batch, env,
    ackedPerSecond: Math.round((run.acks['0'] ?? 0) / run.seconds), unacknowledged: run.unacknowledged, blocked: run.blocked,
    latencyMs: run.latencyMs,
    acksPaced: paced, spoolPeakReadings: spoolPeak,
    hubCpuPercent: Math.round((100 * cpu) / run.seconds),
    gcSeconds, gcShareOfHubCpu: +(gcTotal / cpu).toFixed(3),
    // What each ACK waited for its spool record: lmdb's write thread, the disk sync and the event loop's turn (bucket bounds).
    spoolCommitsMs: {
      count: commits.at(-1)?.count ?? 0, p50AtMost: ms(quantileBound(commits, 0.5)), p99AtMost: ms(quantileBound(commits, 0.99)),
      over50: countAbove(commits, 0.05), over100: countAbove(commits, 0.1),
    },
    // The longest event-loop delay in each second of the window (timer lateness: the busy stretches ACKs wait behind).
    eventLoopLagMaxPerSecondMs: (() => {
      const v = lagMaxPerSecond.filter(Number.isFinite).sort((a, b) => a - b);
      return { seconds: v.length, median: v[Math.floor(v.length / 2)], p90: v[Math.floor(v.length * 0.9)], max: v.at(-1) };
    })(),
    eventLoopLagAtEnd: { p99Ms: (after.lagP99 ?? NaN) * 1000, maxMs: (after.lagMax ?? NaN) * 1000 },
  }, null, 1));
  await until(async () => ((await hub.metrics()) as Metrics).get('pulsewire_spool_entries') === 0, 120_000, 100);
  await driver.call('close');
} finally {
  await driver.close();
  await hub.stop();
}
process.exit(0);
