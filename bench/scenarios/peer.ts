/**
 * The Node-RED peer of the ingest scenario (issue 4): the same driver load
 * (closed loop, batches of 10, the same devices and window) against a
 * Node-RED flow that decodes and writes to its own fresh influxd
 * (bench/servers/node-red-peer.ts). Node-RED ACKs on receipt, not on storage,
 * so what counts is what reaches InfluxDB, counted every second during the
 * load and after it until the count stops moving: points/s, readings lost
 * (sent, never stored) and delayed (stored only after the load stopped, and
 * how long after).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startManagedInfluxd } from '../../src/storage/managed-influxd.js';
import type { ConnectResult, RunResult } from '../lib/driver.js';
import { countStored } from '../lib/hub-process.js';
import { cpuSeconds, pin, rssBytes, sleep, type Placement } from '../lib/proc.js';
import { startNodeRedPeer } from '../servers/node-red-peer.js';
import { startDriver } from './ceilings.js';

export type PeerFigures = {
  seconds: number;
  readingsSent: number;
  /** Readings in messages the flow answered (decoded), within the load window, per second. */
  readingsReceivedPerSecond: number;
  /** Readings in InfluxDB at the end, and per second from load start to the last one stored. */
  stored: number;
  pointsPerSecond: number;
  /** Readings in InfluxDB when the load stopped, per second of load. */
  pointsPerSecondDuringLoad: number;
  /** Sent but never stored (after waiting `settleS` with no change). */
  lost: number;
  /** Stored only after the load stopped, and when the last one arrived (seconds after the stop). */
  delayedReadings: number;
  lastStoredAfterStopS: number;
  /** Messages the flow never answered (the driver's count after its drain). */
  unanswered: number;
  cpuSecondsPerMillionStored: number;
  /** Node-RED's CPU / wall time over the load window (near 1: it ran out of its core). */
  subjectCpuShare: number;
  peakRssMiB: number;
  driverCpuShare: number;
  /** Node-RED's error log lines during the run, by message: the write failures behind "lost". */
  errors: Record<string, number>;
  /** Count of stored readings every second from load start (for the JSON). */
  timeline: Array<{ s: number; stored: number }>;
};

/** The stored count at `s` seconds, interpolated between the samples around it. */
function storedAt(timeline: PeerFigures['timeline'], s: number): number {
  const after = timeline.findIndex((t) => t.s >= s);
  if (after < 0) return timeline.at(-1)?.stored ?? 0;
  const b = timeline[after]!;
  const a = after > 0 ? timeline[after - 1]! : { s: 0, stored: 0 };
  return a.stored + ((b.stored - a.stored) * (s - a.s)) / Math.max(1e-9, b.s - a.s);
}

export async function measureNodeRedPeer(o: { devices: number; batch: number; peerSeconds: number; window: number; settleS?: number; log: (line: string) => void }, place: Placement): Promise<PeerFigures> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'pulsewire-bench-peer-influxd-'));
  const influxd = await startManagedInfluxd({ dataDir });
  const peer = await startNodeRedPeer(influxd.url);
  const driver = startDriver(place);
  const dbUrl = `${influxd.url}/${peer.influxDatabase}`;
  const settleS = o.settleS ?? 10;
  try {
    pin(peer.pid, place.subject, place);
    const connected = await driver.call<ConnectResult>('connect', { url: peer.url, devices: o.devices, prefix: 'peer-' });
    o.log(`  Node-RED peer: ${connected.connected} devices connected in ${connected.seconds.toFixed(1)} s`);
    const timeline: PeerFigures['timeline'] = [];
    let peakRss = 0;
    const cpu0 = cpuSeconds(peer.pid);
    const started = Date.now();
    let polling = true;
    /** Seconds from load start at which the count last grew. */
    let lastGrowth = 0;
    const poller = (async () => {
      while (polling) {
        await sleep(1000);
        peakRss = Math.max(peakRss, rssBytes(peer.pid));
        const previous = timeline.at(-1)?.stored ?? 0;
        const now = { s: (Date.now() - started) / 1000, stored: await countStored(dbUrl, 'p').catch(() => previous) };
        if (now.stored > previous) lastGrowth = now.s;
        timeline.push(now);
      }
    })();
    const run = await driver.call<RunResult>('run', { mode: 'saturate', batch: o.batch, seconds: o.peerSeconds, names: 'p', window: o.window, drainMs: 10_000 });
    const cpuLoad = cpuSeconds(peer.pid) - cpu0;
    const stopS = (run.stoppedAt - started) / 1000;
    // Wait until the count has not grown for settleS (at most 120 s): what is not in by then is lost.
    const waitUntil = Date.now() + 120_000;
    while (Date.now() < waitUntil && (Date.now() - started) / 1000 - Math.max(lastGrowth, stopS) < settleS) await sleep(500);
    polling = false;
    await poller;
    const stored = await countStored(dbUrl, 'p');
    const cpuAll = cpuSeconds(peer.pid) - cpu0;
    const atStop = storedAt(timeline, stopS);
    await driver.call('close');
    return {
      seconds: run.seconds,
      readingsSent: run.readingsSent,
      readingsReceivedPerSecond: (run.ackedInWindow * o.batch) / run.seconds,
      stored,
      pointsPerSecond: stored / Math.max(run.seconds, lastGrowth),
      pointsPerSecondDuringLoad: atStop / run.seconds,
      lost: run.readingsSent - stored,
      delayedReadings: stored - atStop,
      lastStoredAfterStopS: Math.max(0, lastGrowth - stopS),
      unanswered: run.unacknowledged,
      cpuSecondsPerMillionStored: stored > 0 ? cpuAll / (stored / 1e6) : NaN,
      subjectCpuShare: cpuLoad / run.seconds,
      peakRssMiB: peakRss / 2 ** 20,
      driverCpuShare: run.cpuSeconds / run.seconds,
      errors: peer.errors(),
      timeline,
    };
  } finally {
    await driver.close();
    await peer.stop();
    await influxd.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
