/**
 * Scenario `outage` (issue 5): steady load through the hub while its InfluxDB
 * goes away for `outageS` seconds and comes back. The bench runs influxd
 * itself (the hub would restart a managed one at once) and points the hub at
 * it with PULSEWIRE_INFLUX_URL; the outage is stop() of that influxd, the
 * recovery a new influxd on the same data dir and HTTP port. Reported: ACKs
 * during the outage (the spool should keep them at code 0 and at the normal
 * rate), the spool's peak depth, how fast the backlog drains once InfluxDB
 * is back against the normal ingest rate, and loss (counted in InfluxDB).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startManagedInfluxd, type ManagedInfluxd } from '../../src/storage/managed-influxd.js';
import type { ConnectResult, RunResult, Tick } from '../lib/driver.js';
import { BENCH_ENROLLMENT_KEY, countStored, MetricsSampler, startHubProcess } from '../lib/hub-process.js';
import { describeMachine } from '../lib/machine.js';
import { cpuSeconds, pin, placement, sleep, until } from '../lib/proc.js';
import { startDriver } from './ceilings.js';
import type { ResultHead, Target } from '../lib/report.js';

export type OutageOptions = {
  devices: number;
  batch: number;
  /** Offered load, readings per second (fleet-wide, steady). */
  readingsPerSecond: number;
  /** Steady load before the outage; the normal ingest rate is measured over its second half. */
  beforeS: number;
  outageS: number;
  /** Load continues this long after InfluxDB is back. */
  afterS: number;
  drainTimeoutS: number;
  pin: boolean;
  hubEntry?: string[];
  log: (line: string) => void;
};

export const OUTAGE_DEFAULTS: OutageOptions = {
  devices: 1000, batch: 10, readingsPerSecond: 20_000, beforeS: 20, outageS: 30, afterS: 60, drainTimeoutS: 300, pin: true, log: () => {},
};

export type OutageResult = ResultHead<'outage', OutageOptions> & {
  /** Points/s InfluxDB confirmed before the outage (second half of the steady phase). */
  normalIngestPointsPerSecond: number;
  acks: {
    beforePerSecond: number;
    duringOutagePerSecond: number;
    nonZeroDuringOutage: number;
    byCode: Record<string, number>;
  };
  spoolPeak: { entries: number; readings: number; bytes: number };
  recovery: {
    /** From the new influxd answering /ping to the first point the hub wrote. */
    firstWriteAfterS: number;
    /** From InfluxDB back to the spool empty (load still on); undefined if it never emptied under load. */
    spoolEmptyAfterS: number | undefined;
    /** Points/s InfluxDB confirmed from back to empty (backlog plus the new load). */
    catchUpPointsPerSecond: number;
    /** Peak backlog / time to empty: how fast the spool shrank net of the ongoing load. */
    netDrainReadingsPerSecond: number;
  };
  loss: { readingsSent: number; readingsAcked: number; stored: number; lost: number; unacknowledged: number };
  hubCpuSeconds: number;
};

function rateBetween(timeline: Tick[], from: number, to: number, key: 'acked' | 'nonZero'): { count: number; perSecond: number } {
  const inside = timeline.filter((t) => t.at >= from && t.at <= to);
  if (inside.length < 2) return { count: 0, perSecond: 0 };
  const count = inside.at(-1)![key] - inside[0]![key];
  return { count, perSecond: count / ((inside.at(-1)!.at - inside[0]!.at) / 1000) };
}

export async function runOutage(options: Partial<OutageOptions> = {}): Promise<OutageResult> {
  const o: OutageOptions = { ...OUTAGE_DEFAULTS, ...options };
  const place = placement(o.pin);
  const machine = describeMachine();
  const messagesPerSecond = o.readingsPerSecond / o.batch;
  o.log(`outage: ${o.devices} devices, ${o.readingsPerSecond} readings/s (${messagesPerSecond} messages/s of ${o.batch}), InfluxDB down ${o.outageS} s after ${o.beforeS} s; ${place.note}`);
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'pulsewire-bench-outage-influxd-'));
  let influxd: ManagedInfluxd = await startManagedInfluxd({ dataDir });
  const databaseUrl = `${influxd.url}/pulsewire`;
  const hub = await startHubProcess({ entry: o.hubEntry, influxUrl: databaseUrl });
  const driver = startDriver(place);
  try {
    pin(hub.pid, place.subject, place);
    const connected = await driver.call<ConnectResult>('connect', { url: hub.deviceUrl, devices: o.devices, prefix: 'bench-', enrollmentKey: BENCH_ENROLLMENT_KEY });
    o.log(`  ${connected.connected} devices connected in ${connected.seconds.toFixed(1)} s`);
    await until(async () => (await hub.metrics()).get('pulsewire_spool_entries') === 0, 30_000, 100);
    const sampler = new MetricsSampler(hub, 250);
    const cpu0 = cpuSeconds(hub.pid);
    const loadStart = Date.now();
    const running = driver.call<RunResult>('run', { mode: 'rate', batch: o.batch, seconds: o.beforeS + o.outageS + o.afterS, names: 'b', messagesPerSecond, drainMs: 60_000 });

    await sleep(o.beforeS * 1000);
    const downAt = Date.now();
    await influxd.stop();
    o.log(`  influxd stopped at ${((downAt - loadStart) / 1000).toFixed(1)} s`);
    await sleep(Math.max(0, o.outageS * 1000 - (Date.now() - downAt)));
    influxd = await startManagedInfluxd({ dataDir, httpPort: influxd.httpPort });
    const backAt = Date.now();
    o.log(`  influxd back at ${((backAt - loadStart) / 1000).toFixed(1)} s (down ${((backAt - downAt) / 1000).toFixed(1)} s)`);

    const run = await running;
    const loadEnd = Date.now();
    const drained = await until(async () => (await hub.metrics()).get('pulsewire_spool_entries') === 0, o.drainTimeoutS * 1000, 100);
    await sampler.sample();
    sampler.stop();
    const hubCpuSeconds = cpuSeconds(hub.pid) - cpu0;
    if (!drained) o.log(`  the spool did not drain within ${o.drainTimeoutS} s of the load's end`);
    const stored = await countStored(databaseUrl, 'b');

    const s = sampler.samples;
    const at = (t: number) => s.reduce((best, x) => (Math.abs(x.at - t) < Math.abs(best.at - t) ? x : best), s[0]!);
    const normalFrom = at(loadStart + (o.beforeS * 1000) / 2);
    const normalTo = at(downAt);
    const normal = (normalTo.pointsWritten - normalFrom.pointsWritten) / ((normalTo.at - normalFrom.at) / 1000);
    const atBack = at(backAt);
    const firstWrite = s.find((x) => x.at >= backAt && x.pointsWritten > atBack.pointsWritten);
    const empty = s.find((x) => x.at > (firstWrite?.at ?? backAt) && x.spoolEntries === 0);
    const peak = { entries: sampler.peak('spoolEntries'), readings: sampler.peak('spoolReadings'), bytes: sampler.peak('spoolBytes') };
    const emptyAfterS = empty && empty.at <= loadEnd ? (empty.at - backAt) / 1000 : undefined;
    const end = empty ?? s.at(-1)!;
    const recovery = {
      firstWriteAfterS: firstWrite ? (firstWrite.at - backAt) / 1000 : NaN,
      spoolEmptyAfterS: emptyAfterS,
      catchUpPointsPerSecond: (end.pointsWritten - atBack.pointsWritten) / Math.max(0.001, (end.at - atBack.at) / 1000),
      netDrainReadingsPerSecond: atBack.spoolReadings / Math.max(0.001, (end.at - atBack.at) / 1000),
    };
    const before = rateBetween(run.timeline, loadStart + (o.beforeS * 1000) / 2, downAt, 'acked');
    const during = rateBetween(run.timeline, downAt, backAt, 'acked');
    const nonZero = rateBetween(run.timeline, downAt, backAt, 'nonZero');
    const loss = { readingsSent: run.readingsSent, readingsAcked: run.readingsAcked, stored, lost: run.readingsAcked - stored, unacknowledged: run.unacknowledged };
    await driver.call('close');
    const acks = { beforePerSecond: before.perSecond, duringOutagePerSecond: during.perSecond, nonZeroDuringOutage: nonZero.count, byCode: run.acks };
    const result: OutageResult = {
      scenario: 'outage', machine, placement: place, options: (({ log: _l, hubEntry: _h, ...rest }) => rest)(o),
      normalIngestPointsPerSecond: normal, acks, spoolPeak: peak, recovery, loss, hubCpuSeconds, targets: [],
    };
    result.targets = outageTargets(result);
    return result;
  } finally {
    await driver.close();
    await hub.stop();
    await influxd.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

export function outageTargets(r: OutageResult): Target[] {
  const ackRatio = r.acks.beforePerSecond > 0 ? r.acks.duringOutagePerSecond / r.acks.beforePerSecond : 0;
  const drainRatio = r.normalIngestPointsPerSecond > 0 ? r.recovery.catchUpPointsPerSecond / r.normalIngestPointsPerSecond : 0;
  return [
    { target: 'zero loss: sent = acknowledged = stored', figure: `lost ${r.loss.lost} of ${r.loss.readingsAcked}, unACKed ${r.loss.unacknowledged}, sent-ACKed ${r.loss.readingsSent - r.loss.readingsAcked}`, met: r.loss.lost === 0 && r.loss.unacknowledged === 0 && r.loss.readingsSent === r.loss.readingsAcked },
    { target: 'ACKs during the outage stay code 0 at the normal rate', figure: `${r.acks.nonZeroDuringOutage} non-zero; ACK rate ${ackRatio.toFixed(2)} x the rate before`, met: r.acks.nonZeroDuringOutage === 0 && ackRatio >= 0.95 },
    { target: 'backlog drains under load after recovery (catch-up > normal rate)', figure: r.recovery.spoolEmptyAfterS === undefined ? `spool not empty before the load ended; catch-up ${drainRatio.toFixed(2)} x normal` : `empty ${r.recovery.spoolEmptyAfterS.toFixed(1)} s after InfluxDB was back; catch-up ${drainRatio.toFixed(2)} x normal`, met: r.recovery.spoolEmptyAfterS !== undefined },
  ];
}
