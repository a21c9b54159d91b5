/**
 * Probe (not a scenario; prints JSON lines, writes nothing but the two
 * snapshots in DIR): the hub's live JS objects per connected device, with
 * devices that do what the `connections` scenario's do (device-sim: hello
 * state, REPORTED, one TELEMETRY of 4 records per 10 s). Takes a heap
 * snapshot of the built hub idle and another holding N devices, then
 * prints heap-snapshot-diff.mjs's split per device and /proc's RSS parts.
 *
 *   tsx bench/probes/heap-per-device.ts --dir DIR [--devices N] [--settle S]
 *
 * The hub pings every 60 s here: writing a snapshot stops its event loop for
 * seconds, which must not look like dead devices.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { FleetStartArgs } from '../lib/fleet-worker.js';
import { BENCH_ENROLLMENT_KEY, startHubProcess } from '../lib/hub-process.js';
import { memoryStatus, pin, placement, sleep, until } from '../lib/proc.js';
import { startFleetWorker } from '../scenarios/connections.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({ options: { dir: { type: 'string' }, devices: { type: 'string' }, settle: { type: 'string' } } });
if (!values.dir) throw new Error('--dir DIR is required (the snapshots go there)');
const dir = path.resolve(values.dir);
mkdirSync(dir, { recursive: true });
const devices = Number(values.devices ?? 5000);
const settleMs = Number(values.settle ?? 15) * 1000;

const place = placement(true);
const hub = await startHubProcess({
  entry: ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${dir}`, 'dist/src/main.js'],
  env: { PULSEWIRE_PING_INTERVAL_MS: '60000' },
});
pin(hub.pid, place.subject, place);

/** Signals the hub to write a snapshot and waits until the file is complete (its size stops changing). */
async function snapshot(): Promise<string> {
  const known = new Set(readdirSync(dir));
  process.kill(hub.pid, 'SIGUSR2');
  let file: string | undefined;
  await until(() => (file = readdirSync(dir).find((f) => f.endsWith('.heapsnapshot') && !known.has(f))) !== undefined, 120_000, 250);
  const full = path.join(dir, file!);
  let last = -1;
  for (;;) {
    await sleep(2000);
    const size = Number(execFileSync('stat', ['-c', '%s', full], { encoding: 'utf8' }).trim());
    if (size === last && size > 0) return full;
    last = size;
  }
}

const worker = startFleetWorker(place);
try {
  await sleep(2000);
  const idleProc = memoryStatus(hub.pid);
  const idleFile = await snapshot();
  await worker.call('start', { url: hub.deviceUrl, devices, prefix: 'heap-', enrollmentKey: BENCH_ENROLLMENT_KEY, rate: 0.1, batch: 4, ramp: 2000 } satisfies FleetStartArgs);
  await until(async () => (await worker.call<{ connected: number }>('snapshot')).connected >= devices, (devices / 2000) * 1000 + 60_000, 250);
  await sleep(settleMs);
  const heldProc = memoryStatus(hub.pid);
  const heldFile = await snapshot();
  const connected = (await worker.call<{ connected: number }>('snapshot')).connected;
  const per = (k: keyof typeof idleProc) => +((heldProc[k] - idleProc[k]) / 1024 / connected).toFixed(2);
  console.log(JSON.stringify({ devices, connected, kibPerDevice: { rss: per('rss'), anon: per('anon'), file: per('file') } }));
  console.log(execFileSync(process.execPath, [path.join(here, 'heap-snapshot-diff.mjs'), idleFile, heldFile, '--per', String(connected), '--top', '30'], { encoding: 'utf8', maxBuffer: 1 << 26 }).trim());
  await worker.call('stop');
} finally {
  await worker.close();
  await hub.stop();
}
process.exit(0);
