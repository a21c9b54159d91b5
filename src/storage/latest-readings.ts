/**
 * The newest stored reading of each series, read back from InfluxDB: what
 * the live snapshot is seeded with at hub start (its in-memory latest
 * values die with the process) and what GET /v1/devices/:id/series lists.
 *
 * One `last()` query per field kind, grouped by device, name and unit: a
 * single selector returns the point's own time, which several selectors in
 * one query (`last(*)`) would not (InfluxDB answers time 0 then), and the
 * snapshot orders readings by reading time. A series whose kind changed has
 * rows in several fields; the newest wins, as it does in the live stream.
 */
import type { InfluxDB } from 'influx';
import type { ReadingKind } from '../protocol/messages.js';
import { FIELD_BY_KIND, MEASUREMENT, TAG } from './schema.js';

export type StoredLatest = {
  device: string;
  name: string;
  unit?: string;
  /** Reading time, epoch milliseconds (fractional below a millisecond, as the live stream has it). */
  t: number;
  kind: ReadingKind;
  v: number | string | boolean;
};

export type LatestQuery = {
  /** Only this device's series (bound as a parameter); all devices when unset. */
  device?: string;
  /** Only readings at or after this time (epoch ms): keeps the scan to the retention that matters. */
  sinceMs: number;
  /** Most series per field kind read (SLIMIT). */
  maxSeries: number;
};

const KINDS = Object.keys(FIELD_BY_KIND) as ReadingKind[];

type Row = { time: { getNanoTime(): string }; last: number | string | boolean; device?: string; name?: string; unit?: string };

export async function queryLatest(influx: InfluxDB, database: string, q: LatestQuery): Promise<StoredLatest[]> {
  const where = `time >= $since${q.device === undefined ? '' : ` AND "${TAG.DEVICE}" = $device`}`;
  const placeholders: Record<string, string> = { since: new Date(q.sinceMs).toISOString(), ...(q.device === undefined ? {} : { device: q.device }) };
  // maxSeries is a number from config, not request text; everything from a request is a placeholder.
  const limit = Math.max(1, Math.floor(q.maxSeries));
  const results = await Promise.all(KINDS.map(async (kind) => {
    const influxql = `SELECT last("${FIELD_BY_KIND[kind]}") FROM "${MEASUREMENT.TELEMETRY}" WHERE ${where} ` +
      `GROUP BY "${TAG.DEVICE}", "${TAG.NAME}", "${TAG.UNIT}" SLIMIT ${limit}`;
    const rows = await influx.query<Row>(influxql, { database, placeholders });
    return rows.map((row) => toLatest(kind, row, q.device));
  }));
  const newest = new Map<string, StoredLatest>();
  for (const reading of results.flat()) {
    if (reading === undefined) continue;
    const key = `${reading.device}\u0000${reading.name}`;
    const current = newest.get(key);
    if (current === undefined || reading.t >= current.t) newest.set(key, reading);
  }
  return [...newest.values()];
}

function toLatest(kind: ReadingKind, row: Row, device: string | undefined): StoredLatest | undefined {
  const id = row.device || device;
  if (!id || !row.name || row.last === null || row.last === undefined) return undefined;
  // Nanoseconds as text: a Date would round the microseconds the hub stores away.
  const t = Number(BigInt(row.time.getNanoTime()) / 1000n) / 1000;
  return { device: id, name: row.name, ...(row.unit ? { unit: row.unit } : {}), t, kind, v: row.last };
}
