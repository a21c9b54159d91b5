/**
 * Probe (not a scenario; prints one JSON line): CPU of the spool path alone,
 * in one process, no sockets and no InfluxDB, so it is steady on a shared
 * machine. Appends `messages` TELEMETRY messages of `batch` points (the
 * intake's own readingPoints), `perTurn` per event turn as a loaded hub
 * would, with a window mark each, awaits their commits (what an ACK waits
 * for), then drains everything with the hub's SpoolDrainer into a writer
 * that serialises the points with node-influx (as a write would) and
 * discards them. For A/B: alternate --root (a built checkout).
 *
 *   tsx bench/probes/spool-cpu.ts [--root DIR] [--messages N] [--batch N] [--per-turn N]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { InfluxDB, type IPoint } from 'influx';

const { values } = parseArgs({
  options: { root: { type: 'string' }, messages: { type: 'string' }, batch: { type: 'string' }, 'per-turn': { type: 'string' } },
});
const root = path.resolve(values.root ?? '.');
const messages = Number(values.messages ?? 50_000);
const batch = Number(values.batch ?? 10);
const perTurn = Number(values['per-turn'] ?? 100);
const load = (module: string) => import(pathToFileURL(path.join(root, 'dist/src', module)).href);
const { Spool } = await load('storage/spool.js');
const { SpoolDrainer } = await load('storage/spool-drainer.js');
const { readingPoints } = await load('storage/schema.js');

const dir = await mkdtemp(path.join(os.tmpdir(), 'pulsewire-spool-probe-'));
const spool = Spool.open(dir, { maxBytes: 8 * 2 ** 30, windowSize: 32 });
const devices = 1000;
const readings = Array.from({ length: batch }, (_, i) => ({ name: `p${i}`, kind: 'value', value: i + 0.5, timeUs: 1_764_000_000_000_000 + i }));
const influx = new InfluxDB({ host: '127.0.0.1', port: 9, database: 'probe' });
let serialised = 0;
const writer = {
  async write(points: IPoint[]): Promise<void> {
    for (const point of points) serialised += (influx.parsePoint(point, { database: "probe", precision: "u" }).measurement ?? "").length;
  },
};

const cpu0 = process.cpuUsage();
const t0 = performance.now();
for (let sent = 0; sent < messages; ) {
  const commits: Promise<void>[] = [];
  for (let i = 0; i < perTurn && sent < messages; i++, sent++) {
    const deviceId = `probe-${sent % devices}`;
    commits.push(spool.append(deviceId, readingPoints(deviceId, readings), { seq: sent, fingerprint: sent }));
  }
  await Promise.all(commits);
}
const appendCpu = process.cpuUsage(cpu0);
const appendMs = performance.now() - t0;
const drainer = new SpoolDrainer(spool, writer, { batchPoints: 10_000 });
const cpu1 = process.cpuUsage();
const t1 = performance.now();
drainer.start();
while (spool.stats.entries > 0) await new Promise((r) => setTimeout(r, 5));
const drainCpu = process.cpuUsage(cpu1);
const drainMs = performance.now() - t1;
await drainer.stop(1000);
await spool.close();
await rm(dir, { recursive: true, force: true });
const perMillion = (cpu: NodeJS.CpuUsage) => +(((cpu.user + cpu.system) / 1e6) / ((messages * batch) / 1e6)).toFixed(2);
console.log(JSON.stringify({
  root, messages, batch, perTurn,
  appendCpuSecondsPerMillionPoints: perMillion(appendCpu), appendWallMs: Math.round(appendMs),
  drainCpuSecondsPerMillionPoints: perMillion(drainCpu), drainWallMs: Math.round(drainMs), serialised: serialised > 0,
}));
process.exit(0);
