/**
 * The two baselines of the ingest scenario, measured in the same run as the
 * hub so that noise on a shared machine affects both sides of each ratio:
 * ceiling A (a bare ws + cbor-x server under the same driver load) and
 * ceiling B (node-influx alone writing the same points to an influxd of the
 * same kind).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startManagedInfluxd } from '../../src/storage/managed-influxd.js';
import type { ConnectResult, RunArgs, RunResult } from '../lib/driver.js';
import { countStored } from '../lib/hub-process.js';
import { Remote } from '../lib/ipc.js';
import { cpuSeconds, pin, type Placement } from '../lib/proc.js';
import type { CeilingACounts } from '../servers/ceiling-a.js';
import type { CeilingBArgs, CeilingBResult } from '../servers/ceiling-b.js';

const here = path.dirname(fileURLToPath(import.meta.url));
export const DRIVER_MODULE = path.join(here, '..', 'lib', 'driver.ts');
const CEILING_A_MODULE = path.join(here, '..', 'servers', 'ceiling-a.ts');
const CEILING_B_MODULE = path.join(here, '..', 'servers', 'ceiling-b.ts');

/** What one load phase cost the process under test. */
export type LoadFigures = {
  seconds: number;
  messagesSent: number;
  /** ACK 0 within the load window, per second. */
  messagesPerSecond: number;
  readingsPerSecond: number;
  readingsAcked: number;
  /** CPU of the process under test from load start until its work was done (ACKs out; for the hub, spool drained). */
  subjectCpuSeconds: number;
  cpuSecondsPerMillionReadings: number;
  /** Subject CPU / wall time (load start until its work was done): near 1 means it ran out of its core. */
  subjectCpuShare: number;
  /** Driver CPU / wall time: near 1 means the load generator, not the subject, was the limit. */
  driverCpuShare: number;
  unacknowledged: number;
  nonZeroAcks: number;
};

export function loadFigures(run: RunResult, batch: number, subjectCpu: number, wallSeconds: number): LoadFigures {
  const nonZero = Object.entries(run.acks).reduce((n, [code, count]) => n + (code === '0' ? 0 : count), 0);
  return {
    seconds: run.seconds,
    messagesSent: run.sent,
    messagesPerSecond: run.ackedInWindow / run.seconds,
    readingsPerSecond: (run.ackedInWindow * batch) / run.seconds,
    readingsAcked: run.readingsAcked,
    subjectCpuSeconds: subjectCpu,
    cpuSecondsPerMillionReadings: run.readingsAcked > 0 ? subjectCpu / (run.readingsAcked / 1e6) : NaN,
    subjectCpuShare: subjectCpu / wallSeconds,
    driverCpuShare: run.cpuSeconds / wallSeconds,
    unacknowledged: run.unacknowledged,
    nonZeroAcks: nonZero,
  };
}

export function startDriver(place: Placement): Remote {
  const driver = new Remote(DRIVER_MODULE);
  pin(driver.pid, place.load, place);
  return driver;
}

export type CeilingAResult = { batch: LoadFigures; single: LoadFigures; decoded: CeilingACounts };

export async function measureCeilingA(o: { devices: number; batch: number; seconds: number; singleSeconds: number; window: number }, place: Placement): Promise<CeilingAResult> {
  const server = new Remote(CEILING_A_MODULE);
  const driver = startDriver(place);
  try {
    pin(server.pid, place.subject, place);
    const { port } = await server.call<{ port: number }>('start');
    await driver.call<ConnectResult>('connect', { url: `ws://127.0.0.1:${port}/v1/device`, devices: o.devices, prefix: 'ceil-' });
    const phase = async (args: RunArgs) => {
      const cpu0 = cpuSeconds(server.pid);
      const started = Date.now();
      const run = await driver.call<RunResult>('run', args);
      return loadFigures(run, args.batch, cpuSeconds(server.pid) - cpu0, (Date.now() - started) / 1000);
    };
    const batch = await phase({ mode: 'saturate', batch: o.batch, seconds: o.seconds, names: 'b', window: o.window });
    const single = await phase({ mode: 'saturate', batch: 1, seconds: o.singleSeconds, names: 'm', window: o.window });
    const decoded = await server.call<CeilingACounts>('counts');
    await driver.call('close');
    return { batch, single, decoded };
  } finally {
    await driver.close();
    await server.call('stop').catch(() => {});
    await server.close();
  }
}

export type CeilingBFigures = {
  seconds: number;
  pointsWritten: number;
  pointsPerSecond: number;
  stored: number;
  writeErrors: number;
  writerCpuSecondsPerMillionPoints: number;
  influxdCpuSecondsPerMillionPoints: number;
};

export async function measureCeilingB(o: { devices: number; batch: number; seconds: number }, place: Placement): Promise<CeilingBFigures> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'pulsewire-bench-influxd-'));
  const influxd = await startManagedInfluxd({ dataDir });
  const writer = new Remote(CEILING_B_MODULE);
  try {
    pin(writer.pid, place.subject, place);
    const influxCpu0 = cpuSeconds(influxd.pid!);
    const args: CeilingBArgs = { url: `${influxd.url}/pulsewire`, seconds: o.seconds, devices: o.devices, names: o.batch, batchPoints: 5000, concurrency: 2 };
    const r = await writer.call<CeilingBResult>('run', args);
    const influxCpu = cpuSeconds(influxd.pid!) - influxCpu0;
    const stored = await countStored(args.url, 'b');
    const perMillion = (cpu: number) => (r.pointsWritten > 0 ? cpu / (r.pointsWritten / 1e6) : NaN);
    return {
      seconds: r.seconds,
      pointsWritten: r.pointsWritten,
      pointsPerSecond: r.pointsWritten / r.seconds,
      stored,
      writeErrors: r.errors,
      writerCpuSecondsPerMillionPoints: perMillion(r.cpuSeconds),
      influxdCpuSecondsPerMillionPoints: perMillion(influxCpu),
    };
  } finally {
    await writer.close();
    await influxd.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
