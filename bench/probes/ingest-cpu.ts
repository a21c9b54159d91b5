/**
 * Probe (not a scenario; prints one JSON line, writes nothing): the hub's CPU
 * per million readings under the closed-loop driver, from load start until
 * the spool is empty (so the drain into InfluxDB counts too). CPU time of the
 * hub process is steadier on a shared machine than its rate, which the
 * backlog pacer ties to InfluxDB anyway. For A/B: alternate --root.
 *
 *   tsx bench/probes/ingest-cpu.ts [--root DIR] [--batch N] [--seconds S] [--devices N] [--cpu-prof DIR] [--env K=V,...]
 *     [--heap-prof DIR [--heap-prof-interval BYTES]] [--rate MESSAGES_PER_S]
 *
 * --rate: a fixed fleet-wide message rate instead of the closed loop. On a
 * shared machine the closed loop's rate follows the CPU the hub gets, and the
 * cost per reading follows the rate (fewer messages per turn share each
 * turn's fixed costs), so two builds compare better at one rate both keep up
 * with (check readingsAckedPerSecond).
 *
 * --heap-prof: an allocation profile of the hub over the load window (V8's
 * sampling heap profiler through the hub's inspector, collected objects
 * included, see bench/lib/heap-sampler.ts), written to DIR as a .heapprofile;
 * read it with bench/probes/heap-profile-top.mjs. Its sampling costs the hub
 * CPU, so the CPU figure of such a run is not comparable.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { RunResult } from '../lib/driver.js';
import { HeapSampler } from '../lib/heap-sampler.js';
import { BENCH_ENROLLMENT_KEY, parseEnvList, startHubProcess } from '../lib/hub-process.js';
import { cpuSeconds, pin, placement, sleep, until } from '../lib/proc.js';
import { startDriver } from '../scenarios/ceilings.js';

const { values } = parseArgs({
  options: { root: { type: 'string' }, env: { type: 'string' }, batch: { type: 'string' }, seconds: { type: 'string' }, devices: { type: 'string' }, 'cpu-prof': { type: 'string' },
    'heap-prof': { type: 'string' }, 'heap-prof-interval': { type: 'string' }, rate: { type: 'string' } },
});
const root = path.resolve(values.root ?? '.');
const batch = Number(values.batch ?? 10);
const prof = values['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${values['cpu-prof']}`] : [];

const place = placement(true);
const env = parseEnvList(values.env);
const hub = await startHubProcess({ entry: [...prof, path.join(root, 'dist/src/main.js')], env, inspector: values['heap-prof'] !== undefined });
pin(hub.pid, place.subject, place);
const driver = startDriver(place);
let sampler: HeapSampler | undefined;
try {
  await driver.call('connect', { url: hub.deviceUrl, devices: Number(values.devices ?? 500), prefix: 'probe-', enrollmentKey: BENCH_ENROLLMENT_KEY });
  await sleep(1000);
  sampler = hub.inspectorUrl === undefined ? undefined : await HeapSampler.connect(hub.inspectorUrl);
  await sampler?.start(values['heap-prof-interval'] ? Number(values['heap-prof-interval']) : undefined);
  const cpu0 = cpuSeconds(hub.pid);
  const t0 = Date.now();
  const mode = values.rate === undefined ? { mode: 'saturate' } : { mode: 'rate', messagesPerSecond: Number(values.rate) };
  const run = await driver.call<RunResult>('run', { ...mode, batch, seconds: Number(values.seconds ?? 15), names: 'p', window: 32 });
  const loadCpu = cpuSeconds(hub.pid) - cpu0;
  await until(async () => (await hub.metrics()).get('pulsewire_spool_entries') === 0, 120_000, 100);
  const cpu = cpuSeconds(hub.pid) - cpu0;
  const heapProfile = sampler ? await sampler.stopTo(values['heap-prof']!, hub.pid) : undefined;
  console.log(JSON.stringify({
    root, batch, ...(values.rate === undefined ? {} : { messagesPerSecond: Number(values.rate) }), readingsAckedPerSecond: Math.round(run.readingsAcked / run.seconds),
    intoInfluxPerSecond: Math.round(run.readingsAcked / ((Date.now() - t0) / 1000)),
    hubCpuSecondsPerMillionReadings: +(cpu / (run.readingsAcked / 1e6)).toFixed(2),
    hubCpuPercentDuringLoad: Math.round((100 * loadCpu) / run.seconds), acks: run.acks,
    ...(heapProfile ? { heapProfile } : {}),
  }));
  await driver.call('close');
} finally {
  // A node process with an inspector client attached waits for it to go before it exits.
  sampler?.close();
  await driver.close();
  await hub.stop();
}
process.exit(0);
