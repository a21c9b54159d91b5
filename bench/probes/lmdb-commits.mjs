#!/usr/bin/env node
/**
 * Probe: what lmdb commits cost by themselves at the rate the hub makes them
 * at a moderate fixed load (about 190 per second): each commit one 2 KB
 * value (a spool record) and 4 small puts (duplicate-window slots), as the
 * spool does, in a fresh env under the OS temp dir. Prints commits/s, the
 * process's CPU (all threads: lmdb's write thread and sync included), the
 * event loop's utilisation and commit latency.
 *
 *   node bench/probes/lmdb-commits.mjs [--commits 1000] [--gap-ms 4] [--options '{"noSync":true,"overlappingSync":false}']
 */
import { open } from 'lmdb';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { commits: { type: 'string' }, 'gap-ms': { type: 'string' }, options: { type: 'string' } } });
const commits = Math.max(1, Number(values.commits ?? 1000));
const gapMs = Number(values['gap-ms'] ?? 4);
const options = JSON.parse(values.options ?? '{}');
const dir = mkdtempSync(path.join(os.tmpdir(), 'pulsewire-lmdb-probe-'));
const root = open({ path: dir, ...options });
const records = root.openDB({ name: 'entries', encoding: 'string' });
const slots = root.openDB({ name: 'accepted' });
const value = 'x'.repeat(2000);
const latency = [];
const elu0 = performance.eventLoopUtilization();
const cpu0 = process.cpuUsage();
const t0 = performance.now();
for (let i = 0; i < commits; i++) {
  const started = performance.now();
  const puts = [records.put(i, value)];
  for (let j = 0; j < 4; j++) puts.push(slots.put(`dev-${j}-${i % 50}`, [i, j]));
  await Promise.all(puts);
  latency.push(performance.now() - started);
  await new Promise((resolve) => setTimeout(resolve, gapMs));
}
const wallMs = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
latency.sort((a, b) => a - b);
const at = (q) => +latency[Math.min(latency.length - 1, Math.floor(q * latency.length))].toFixed(2);
console.log(JSON.stringify({
  options, commitsPerSecond: Math.round((commits * 1000) / wallMs),
  cpuPercent: +((100 * (cpu.user + cpu.system)) / 1000 / wallMs).toFixed(1),
  eventLoopUtilisation: +performance.eventLoopUtilization(elu0).utilization.toFixed(3),
  commitMs: { p50: at(0.5), p99: at(0.99), max: at(1) },
}));
await root.close();
rmSync(dir, { recursive: true, force: true });
