/**
 * Probe, not a scenario: how a hub of workers takes a fleet connecting at a
 * given ramp, and where connections wait. node:cluster's default scheduling
 * on Linux is round-robin: the primary accepts every connection and hands it
 * to a worker, one at a time per worker (the next only once the worker has
 * answered for the last), so when the workers are slower than the ramp the
 * primary holds a queue of accepted connections that no worker has taken
 * (its open descriptors, sampled every second here). `--policy none` runs the
 * same hub with NODE_CLUSTER_SCHED_POLICY=none (each worker accepts from the
 * shared socket itself; the kernel's listen backlog is then the queue).
 *
 *   npx tsx bench/probes/worker-accepts.ts --devices 30000 --workers 3 --ramp 2000 [--policy rr|none] [--runs 2]
 *
 * With --runs N it alternates rr and none N times each. Prints, per run: time
 * until all were connected (or none more for 120 s), failed handshakes by
 * reason, the primary's peak descriptors and each second's counts.
 */
import { parseArgs } from 'node:util';
import { FleetGroup, fleetProcessesFor } from '../lib/fleet-group.js';
import { BENCH_ENROLLMENT_KEY, startHubProcess } from '../lib/hub-process.js';
import { openFds, sleep } from '../lib/proc.js';
import { CONNECT_STALL_MS } from '../scenarios/connections.js';

const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '30000' }, workers: { type: 'string', default: '3' }, ramp: { type: 'string', default: '2000' },
    policy: { type: 'string' }, runs: { type: 'string', default: '1' }, 'max-seconds': { type: 'string', default: '600' },
  },
});
const devices = Number(values.devices);
const workers = Number(values.workers);
const ramp = Number(values.ramp);
const maxMs = Number(values['max-seconds']) * 1000;
const policies = values.policy ? [values.policy] : ['rr', 'none'];
const unpinned = { pinned: false, subject: 'any', load: 'any', note: 'not pinned' };

async function run(policy: string): Promise<void> {
  const hub = await startHubProcess({ workers, env: { NODE_CLUSTER_SCHED_POLICY: policy, PULSEWIRE_PING_INTERVAL_MS: '25000' } });
  const fleet = new FleetGroup(Math.max(workers, fleetProcessesFor(devices)), unpinned);
  try {
    const started = Date.now();
    await fleet.start({ url: hub.deviceUrl, devices, prefix: 'wa-', enrollmentKey: BENCH_ENROLLMENT_KEY, rate: 0.01, batch: 1, ramp });
    let best = -1;
    let bestAt = started;
    let peakPrimary = 0;
    const lines: string[] = [];
    for (;;) {
      await sleep(1000);
      const snap = await fleet.snapshot();
      const fds = hub.processes().hub.map(openFds);
      peakPrimary = Math.max(peakPrimary, fds[0] ?? 0);
      const s = (Date.now() - started) / 1000;
      lines.push(`${s.toFixed(0)} s: connected ${snap.connected}, connecting ${snap.connecting}, waiting ${snap.waiting}, failed ${snap.connectFailures}; descriptors primary ${fds[0]}, workers ${fds.slice(1).join(' ')}; simulator stall max ${(snap.loopDelayMaxMs / 1000).toFixed(1)} s`);
      if (snap.connected > best) { best = snap.connected; bestAt = Date.now(); }
      if (snap.connected >= devices || Date.now() - bestAt > CONNECT_STALL_MS || Date.now() - started > maxMs) break;
    }
    const seconds = (Date.now() - started) / 1000;
    const { summary } = await fleet.stop();
    console.log(`\npolicy ${policy}: ${best} of ${devices} connected after ${seconds.toFixed(1)} s; primary's peak descriptors ${peakPrimary}; failed handshakes ${JSON.stringify(summary.connections.connectFailures)}; closes ${JSON.stringify(summary.connections.disconnects)}`);
    for (const line of lines.filter((_, i) => i % 5 === 0 || i === lines.length - 1)) console.log(`  ${line}`);
  } finally {
    await fleet.close();
    await hub.stop();
  }
}

for (let i = 0; i < Number(values.runs); i++) for (const policy of policies) await run(policy);
process.exit(0);
