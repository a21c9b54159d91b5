/**
 * Ceiling B: what storage allows at best. node-influx alone, configured as
 * the hub configures it (connectInflux), writes the points the hub would
 * write for the same load (readingPoints: measurement telemetry, tags device
 * and name, field value, microsecond times) in requests of the hub's batch
 * size with the hub's two concurrent writes, as fast as InfluxDB confirms.
 * No sockets, no decoding, no spool.
 */
import { connectInflux } from '../../src/storage/influx-connection.js';
import { readingPoints } from '../../src/storage/schema.js';
import { WRITE_PRECISION } from '../../src/storage/schema.js';
import type { Reading } from '../../src/protocol/index.js';
import { serve } from '../lib/ipc.js';

export type CeilingBArgs = {
  /** http://127.0.0.1:PORT/database */
  url: string;
  seconds: number;
  devices: number;
  /** Names per device (the batch size of the ingest load). */
  names: number;
  batchPoints: number;
  concurrency: number;
};

export type CeilingBResult = { startedAt: number; seconds: number; pointsWritten: number; requests: number; errors: number; cpuSeconds: number };

async function run(args: CeilingBArgs): Promise<CeilingBResult> {
  const conn = connectInflux(args.url);
  await conn.ensureDatabase();
  const deviceIds = Array.from({ length: args.devices }, (_, i) => `ceil-${String(i).padStart(5, '0')}`);
  const names = Array.from({ length: args.names }, (_, i) => `b${i}`);
  // One "message" per device in turn, as the hub's spool would hold them: a device's batch of names at one time.
  let device = 0;
  let clockUs = (Date.now() - 3_600_000) * 1000;
  const nextBatch = () => {
    const points = [];
    while (points.length < args.batchPoints) {
      const readings: Reading[] = names.map((name) => ({ name, timeUs: clockUs, kind: 'value', value: Math.random() * 100 }));
      points.push(...readingPoints(deviceIds[device]!, readings));
      device = (device + 1) % deviceIds.length;
      if (device === 0) clockUs += 1000;
    }
    return points;
  };
  const cpuStart = process.cpuUsage();
  const startedAt = Date.now();
  const until = startedAt + args.seconds * 1000;
  let pointsWritten = 0;
  let requests = 0;
  let errors = 0;
  const slot = async () => {
    while (Date.now() < until) {
      const points = nextBatch();
      requests++;
      try {
        await conn.influx.writePoints(points, { precision: WRITE_PRECISION });
        pointsWritten += points.length;
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: args.concurrency }, slot));
  const cpu = process.cpuUsage(cpuStart);
  return { startedAt, seconds: (Date.now() - startedAt) / 1000, pointsWritten, requests, errors, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

serve({ run });
