/**
 * A quick ingest probe until the benchmark suite (issue 4) exists: starts the
 * built hub as its own process with a managed influxd in a temp dir, drives
 * N devices that each keep a full window of 32 TELEMETRY messages in flight
 * for a fixed time, then checks that every acknowledged reading is in
 * InfluxDB and prints rates and the hub's CPU time per million readings.
 *
 *   npm run build && npx tsx scripts/probe-ingest.ts [devices=100] [batch=10] [seconds=20]
 *
 * Loopback only, bounded in time; load generator and hub share the machine.
 */
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { decodeHubFrame, encodeTelemetry, senmlRecord } from '../src/protocol/index.js';
import { connectInflux } from '../src/storage/influx-connection.js';

const [devices = 100, batch = 10, seconds = 20] = process.argv.slice(2).map(Number);
const KEY = 'probe-enrollment-key-0123456789';
const TOKEN = 'probe-operator-token-0123456789';
const WINDOW = 32;

const dataDir = mkdtempSync(path.join(os.tmpdir(), 'pulsewire-probe-'));
const port = 20_000 + Math.floor(Math.random() * 20_000);
const hub = spawn(process.execPath, ['dist/src/main.js'], {
  env: { ...process.env, PULSEWIRE_PORT: String(port), PULSEWIRE_DATA_DIR: dataDir, PULSEWIRE_ENROLLMENT_KEY: KEY, PULSEWIRE_OPERATOR_TOKEN: TOKEN, PULSEWIRE_LOG_LEVEL: 'warn' },
  stdio: ['ignore', 'pipe', 'inherit'],
});
let banner = '';
hub.stdout.on('data', (chunk) => { banner += chunk; });

const cpuSeconds = (pid: number) => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in USER_HZ (100 on Linux)
};

async function waitReady(): Promise<void> {
  for (let i = 0; i < 150; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.ok, () => false);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('hub not ready within 30 s');
}

type Stats = { sent: number; acked: number; readings: number; nonZero: number };

function runDevice(id: string, until: number, stats: Stats): Promise<void> {
  const secret = createHmac('sha256', KEY).update(id).digest('base64url');
  const socket = new WebSocket(`ws://127.0.0.1:${port}/v1/device`, ['pulsewire.v1'], {
    headers: { authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}` },
  });
  let seq = 0;
  let inFlight = 0;
  const send = () => {
    while (inFlight < WINDOW && Date.now() < until) {
      const records = Array.from({ length: batch }, (_, i) =>
        senmlRecord(i === 0 ? { bn: `${id}/`, n: `s${i}`, v: Math.random() * 100, t: -i / 1000 } : { n: `s${i}`, v: Math.random() * 100 }));
      socket.send(encodeTelemetry(seq++ >>> 0, records));
      stats.sent++;
      inFlight++;
    }
    if (inFlight === 0 && Date.now() >= until) socket.close(1000);
  };
  return new Promise((resolve, reject) => {
    socket.on('open', send);
    socket.on('message', (data) => {
      const ack = decodeHubFrame(new Uint8Array(data as Buffer));
      if (ack instanceof Error || ack.type !== 2) return;
      inFlight--;
      stats.acked++;
      if ((ack.code ?? 0) === 0) stats.readings += batch;
      else stats.nonZero++;
      send();
    });
    socket.on('close', () => resolve());
    socket.on('error', reject);
  });
}

try {
  await waitReady();
  const influxUrl = /InfluxDB:\s+(http:\/\/\S+)/.exec(banner)?.[1];
  const cpuBefore = cpuSeconds(hub.pid!);
  const start = Date.now();
  const stats: Stats = { sent: 0, acked: 0, readings: 0, nonZero: 0 };
  const ticker = setInterval(() => process.stderr.write(`  ${((Date.now() - start) / 1000).toFixed(0)} s: ${stats.acked} ACKs, ${stats.readings} readings\n`), 5000);
  await Promise.all(Array.from({ length: devices }, (_, i) => runDevice(`probe-${String(i).padStart(5, '0')}`, start + seconds * 1000, stats)));
  clearInterval(ticker);
  const elapsed = (Date.now() - start) / 1000;
  const cpu = cpuSeconds(hub.pid!) - cpuBefore;
  const influx = connectInflux(`${influxUrl}/pulsewire`);
  const rows = await influx.influx.query<{ count: number }>('SELECT count("value") FROM "telemetry"');
  const stored = Number(rows[0]?.count ?? 0);
  console.log(JSON.stringify({
    machine: `${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, node ${process.version}`,
    devices, batch, seconds: elapsed,
    messagesAcked: stats.acked, nonZeroAcks: stats.nonZero,
    readingsAcked: stats.readings, readingsStored: stored, lost: stats.readings - stored,
    readingsPerSecond: Math.round(stats.readings / elapsed),
    messagesPerSecond: Math.round(stats.acked / elapsed),
    hubCpuSecondsPerMillionReadings: Number((cpu / (stats.readings / 1e6)).toFixed(2)),
  }, null, 2));
} finally {
  hub.kill('SIGTERM');
  await new Promise((r) => hub.once('exit', r));
  rmSync(dataDir, { recursive: true, force: true });
}
