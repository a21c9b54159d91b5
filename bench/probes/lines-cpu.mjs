#!/usr/bin/env node
/**
 * Probe: CPU of a reading's text from intake to the InfluxDB request body, in
 * one process with a built hub's own parts (`--root DIR`, for A/B): each
 * message's readings made as resolvePack makes them, readingLines with the
 * device's SeriesKeys, Spool.appendLines with a window mark (`--per-turn`
 * messages an event turn, their commits awaited as ACKs wait), while a
 * SpoolDrainer and a PointWriter drain it into a sink that encodes each body
 * as the InfluxDB write does (Buffer.from) and discards it. The drain runs
 * along the appends, as in the hub, so records are held from append to
 * "write confirmed" and the GC's cost of holding them counts. Prints CPU-s
 * per million readings (the whole process, GC included).
 *
 *   node bench/probes/lines-cpu.mjs [--root DIR] [--messages 200000] [--batch 10] [--per-turn 100]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { root: { type: 'string' }, messages: { type: 'string' }, batch: { type: 'string' }, 'per-turn': { type: 'string' } } });
const root = path.resolve(values.root ?? '.');
const messages = Number(values.messages ?? 200_000);
const batch = Number(values.batch ?? 10);
const perTurn = Number(values['per-turn'] ?? 100);
const load = (module) => import(pathToFileURL(path.join(root, 'dist/src', module)).href);
const { Spool } = await load('storage/spool.js');
const { SpoolDrainer } = await load('storage/spool-drainer.js');
const { PointWriter } = await load('storage/writer.js');
const { readingLines, SeriesKeys } = await load('storage/reading-lines.js');

const dir = await mkdtemp(path.join(os.tmpdir(), 'pulsewire-lines-probe-'));
const spool = Spool.open(dir, { maxBytes: 8 * 2 ** 30, windowSize: 32 });
let bodyBytes = 0;
// The body encoded as influx-write.ts encodes it. The hub's default batch (PULSEWIRE_WRITE_BATCH_POINTS) and the drainer's twice it, as app.ts sets them.
const writer = new PointWriter({ writeLines: async (body) => { bodyBytes += (typeof body === 'string' ? Buffer.from(body, 'utf8') : body).length; } }, { maxBatchPoints: 5000 });
const drainer = new SpoolDrainer(spool, writer, { batchPoints: 10_000 });
const devices = Array.from({ length: 500 }, (_, i) => ({ id: `probe-${i}`, keys: new SeriesKeys(`probe-${i}`) }));
const names = Array.from({ length: batch }, (_, i) => `p${i}`);

const cpu0 = process.cpuUsage();
const t0 = performance.now();
drainer.start();
let timeUs = 1_764_000_000_000_000;
for (let sent = 0; sent < messages; ) {
  const commits = [];
  for (let i = 0; i < perTurn && sent < messages; i++, sent++) {
    const device = devices[sent % devices.length];
    timeUs += 1000;
    const readings = names.map((name) => ({ name, timeUs, kind: 'value', value: Math.round(Math.random() * 1e6) / 1e3 }));
    commits.push(spool.appendLines(device.id, readingLines(device.keys, readings), readings.length, { seq: sent, fingerprint: sent }));
  }
  await Promise.all(commits);
}
while (spool.stats.entries > 0) await new Promise((r) => setTimeout(r, 2));
const cpu = process.cpuUsage(cpu0);
const wallMs = performance.now() - t0;
await drainer.stop(1000);
await spool.close();
await rm(dir, { recursive: true, force: true });
console.log(JSON.stringify({
  root, messages, batch, perTurn, cpuSecondsPerMillionReadings: +(((cpu.user + cpu.system) / 1e6) / ((messages * batch) / 1e6)).toFixed(3),
  wallMs: Math.round(wallMs), bodyBytes,
}));
process.exit(0);
