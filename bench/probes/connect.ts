/**
 * Probe (not a scenario; prints one JSON line, writes nothing): how fast a
 * built hub accepts new devices, what each accept costs it in CPU, and what
 * each idle connection costs in RSS. For A/B work on the upgrade path: build
 * the other version into another directory and alternate runs.
 *
 *   tsx bench/probes/connect.ts [--root DIR] [--devices N] [--concurrency N] [--cpu-prof DIR] [--heap DIR]
 *
 * --root is a checkout with a built dist (default this one); the hub and this
 * client are pinned to cores 0 and 1. --heap writes a heap snapshot of the
 * hub holding the devices (node --heapsnapshot-signal).
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { SUBPROTOCOL } from '../../src/protocol/index.js';
import { deriveEnrollmentSecret } from '../../src/registry/secrets.js';
import { BENCH_ENROLLMENT_KEY, startHubProcess } from '../lib/hub-process.js';
import { cpuSeconds, median, pin, placement, sleep, vmRssBytes } from '../lib/proc.js';

const { values } = parseArgs({
  options: { root: { type: 'string' }, devices: { type: 'string' }, concurrency: { type: 'string' }, 'cpu-prof': { type: 'string' }, heap: { type: 'string' } },
});
const root = path.resolve(values.root ?? '.');
const devices = Number(values.devices ?? 5000);
const concurrency = Number(values.concurrency ?? 200);
const flags = values['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${values['cpu-prof']}`]
  : values.heap ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${values.heap}`] : [];

const place = placement(true);
const hub = await startHubProcess({ entry: [...flags, path.join(root, 'dist/src/main.js')], env: { PULSEWIRE_PING_INTERVAL_MS: '60000' } });
pin(hub.pid, place.subject, place);
pin(process.pid, place.load, place);
await sleep(2000);
const rssIdle = vmRssBytes(hub.pid);
const cpu0 = cpuSeconds(hub.pid);
const t0 = performance.now();
const sockets: WebSocket[] = [];
let next = 0;
let failed = 0;
await new Promise<void>((resolve) => {
  const settle = () => { if (sockets.length + failed === devices) resolve(); else launch(); };
  const launch = () => {
    if (next >= devices) return;
    const id = `probe-${next++}`;
    const auth = Buffer.from(`${id}:${deriveEnrollmentSecret(BENCH_ENROLLMENT_KEY, id)}`).toString('base64');
    const ws = new WebSocket(hub.deviceUrl, SUBPROTOCOL, { headers: { authorization: `Basic ${auth}` } });
    ws.once('open', () => { sockets.push(ws); settle(); });
    ws.once('error', () => { failed++; settle(); });
  };
  for (let i = 0; i < concurrency; i++) launch();
});
const seconds = (performance.now() - t0) / 1000;
const cpu = cpuSeconds(hub.pid) - cpu0;
await sleep(5000);
const rss: number[] = [];
for (let i = 0; i < 5; i++) { rss.push(vmRssBytes(hub.pid)); await sleep(500); }
console.log(JSON.stringify({
  root, devices, open: sockets.length, failed, seconds: +seconds.toFixed(2), acceptsPerSecond: Math.round(sockets.length / seconds),
  hubCpuMsPerAccept: +((cpu * 1000) / sockets.length).toFixed(3), rssIdleMiB: +(rssIdle / 2 ** 20).toFixed(1),
  kibPerConnection: +((median(rss) - rssIdle) / 1024 / sockets.length).toFixed(2),
}));
if (values.heap) {
  const before = readdirSync(values.heap).length;
  process.kill(hub.pid, 'SIGUSR2');
  while (readdirSync(values.heap).length === before) await sleep(500);
  await sleep(15_000); // the file appears first and is written after
}
for (const ws of sockets) ws.terminate();
await sleep(1500);
await hub.stop();
process.exit(0);
