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
 *
 * The answers are read as they stream in (influx-query-stream.ts), one kind
 * after the other: a fleet's worth of series is parsed a socket read at a
 * time, never in one block of the event loop.
 */
import type { ReadingKind } from '../protocol/messages.js';
import type { StreamedSeries, StreamQuery } from './influx-query-stream.js';
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

/**
 * The newest reading of each series, handed to `onBatch` a socket read at a
 * time, kind after kind: the same series may come again in another kind's
 * batch (the newest wins: compare `t`).
 */
export async function forEachLatest(query: StreamQuery, q: LatestQuery, onBatch: (readings: StoredLatest[]) => void): Promise<void> {
  const where = `time >= $since${q.device === undefined ? '' : ` AND "${TAG.DEVICE}" = $device`}`;
  const params: Record<string, string> = { since: new Date(q.sinceMs).toISOString(), ...(q.device === undefined ? {} : { device: q.device }) };
  // maxSeries is a number from config, not request text; everything from a request is a parameter.
  const limit = Math.max(1, Math.floor(q.maxSeries));
  for (const kind of KINDS) {
    const influxql = `SELECT last("${FIELD_BY_KIND[kind]}") FROM "${MEASUREMENT.TELEMETRY}" WHERE ${where} ` +
      `GROUP BY "${TAG.DEVICE}", "${TAG.NAME}", "${TAG.UNIT}" SLIMIT ${limit}`;
    await query(influxql, params, (series) => {
      const batch: StoredLatest[] = [];
      for (const one of series) {
        const reading = toLatest(kind, one, q.device);
        if (reading) batch.push(reading);
      }
      if (batch.length > 0) onBatch(batch);
    });
  }
}

/** The newest reading of each series, all at once (a device's series: a few). */
export async function queryLatest(query: StreamQuery, q: LatestQuery): Promise<StoredLatest[]> {
  const newest = new Map<string, StoredLatest>();
  await forEachLatest(query, q, (batch) => {
    for (const reading of batch) {
      const key = `${reading.device}\u0000${reading.name}`;
      const current = newest.get(key);
      if (current === undefined || reading.t >= current.t) newest.set(key, reading);
    }
  });
  return [...newest.values()];
}

function toLatest(kind: ReadingKind, series: StreamedSeries, device: string | undefined): StoredLatest | undefined {
  const id = series.tags?.[TAG.DEVICE] || device;
  const name = series.tags?.[TAG.NAME];
  const unit = series.tags?.[TAG.UNIT];
  const row = series.values[0];
  const timeAt = series.columns.indexOf('time');
  const lastAt = series.columns.indexOf('last');
  if (!id || !name || row === undefined || timeAt === -1 || lastAt === -1) return undefined;
  const v = row[lastAt];
  const us = row[timeAt];
  if (v === null || v === undefined || typeof us !== 'number') return undefined;
  if (typeof v !== 'number' && typeof v !== 'string' && typeof v !== 'boolean') return undefined;
  // Microseconds (epoch=u) to milliseconds with the fraction kept: the live stream orders by it.
  return { device: id, name, ...(unit ? { unit } : {}), t: us / 1000, kind, v };
}
