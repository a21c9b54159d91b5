/**
 * Per-test databases on the suite's influxd, and a query helper that returns
 * times as exact integer microseconds (node-influx's own parsing turns them
 * into Dates, which lose the microseconds).
 */

import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { connectInflux, type InfluxConnection } from '../../src/storage/influx-connection.js';

export type Row = Record<string, unknown> & { time: number };

export type FreshDatabase = {
  /** Base URL plus the database path: what connectInflux and the app take. */
  url: string;
  database: string;
  connection: InfluxConnection;
  /** Rows of the first series' result of each statement, flattened; time in µs. */
  query<T extends Row = Row>(influxql: string): Promise<T[]>;
  drop(): Promise<void>;
};

type RawResponse = {
  results: { error?: string; series?: { name: string; tags?: Record<string, string>; columns: string[]; values: unknown[][] }[] }[];
};

export async function freshDatabase(prefix: string): Promise<FreshDatabase> {
  const database = `${prefix.replace(/[^A-Za-z0-9_-]/g, '_')}_${process.pid}_${randomBytes(4).toString('hex')}`;
  const url = `${inject('influxUrl')}/${database}`;
  const connection = connectInflux(url);
  await connection.ensureDatabase();
  return {
    url,
    database,
    connection,
    async query<T extends Row = Row>(influxql: string): Promise<T[]> {
      const raw = (await connection.influx.queryRaw(influxql, { database, precision: 'u' })) as RawResponse;
      const rows: T[] = [];
      for (const result of raw.results) {
        if (result.error) throw new Error(`InfluxQL error: ${result.error}`);
        for (const series of result.series ?? []) {
          for (const values of series.values) {
            const row: Record<string, unknown> = { ...series.tags };
            series.columns.forEach((column, i) => (row[column] = values[i]));
            rows.push(row as T);
          }
        }
      }
      return rows;
    },
    async drop() {
      await connection.influx.dropDatabase(database);
    },
  };
}
