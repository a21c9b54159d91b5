import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { forEachLatest, queryLatest, type StoredLatest } from '../../src/storage/latest-readings.js';
import { unreachable } from '../support/ports.js';
import { connectInflux } from '../../src/storage/influx-connection.js';
import { freshDatabase, type FreshDatabase } from '../support/influx.js';

describe('the newest reading of each series, streamed from a real influxd (chunked answers)', () => {
  let db: FreshDatabase;
  const nowUs = Math.floor(Date.now() / 1000) * 1_000_000;
  const DEVICES = 1500;

  beforeAll(async () => {
    db = await freshDatabase('latest');
    const lines: string[] = [];
    for (let d = 0; d < DEVICES; d++) {
      const device = `dev-${d}`;
      // Two points of t (the newer one wins), one of rh, a µs fraction to keep.
      lines.push(`telemetry,device=${device},name=t,unit=Cel value=1 ${nowUs - 2_000_000 - d}`);
      lines.push(`telemetry,device=${device},name=t,unit=Cel value=${d}.5 ${nowUs - d}`);
      lines.push(`telemetry,device=${device},name=rh,unit=%RH value=40 ${nowUs - 1_000_000 + 7}`);
    }
    // A series whose kind changed: its text is newer than its number.
    lines.push(`telemetry,device=dev-0,name=mode value=3 ${nowUs - 5_000_000}`);
    lines.push(`telemetry,device=dev-0,name=mode text="auto" ${nowUs - 4_000_000}`);
    await db.connection.writeLines(lines.join('\n'));
  });
  afterAll(async () => { await db?.drop(); });

  it('hands the series over in several batches, each series once per kind, times exact to the microsecond', async () => {
    const batches: StoredLatest[][] = [];
    await forEachLatest(db.connection.queryStream, { sinceMs: Date.now() - 3_600_000, maxSeries: 100_000 }, (batch) => batches.push(batch));
    const all = batches.flat();
    // 2 numeric series per device plus dev-0's mode as a number and as a text.
    expect(all).toHaveLength(2 * DEVICES + 2);
    expect(batches.length).toBeGreaterThan(1);
    const t7 = all.find((r) => r.device === 'dev-7' && r.name === 't')!;
    expect(t7).toEqual({ device: 'dev-7', name: 't', unit: 'Cel', t: (nowUs - 7) / 1000, kind: 'value', v: 7.5 });
  });

  it('queryLatest keeps the newest of a series across kinds, and one device alone when asked', async () => {
    const latest = await queryLatest(db.connection.queryStream, { device: 'dev-0', sinceMs: Date.now() - 3_600_000, maxSeries: 100 });
    const byName = Object.fromEntries(latest.map((r) => [r.name, r]));
    expect(Object.keys(byName).sort()).toEqual(['mode', 'rh', 't']);
    expect(byName['mode']).toMatchObject({ kind: 'text', v: 'auto' });
    expect(byName['rh']!.t).toBe((nowUs - 1_000_000 + 7) / 1000);
  });

  it('a device id with quotes or a newline is a bound parameter, not query text', async () => {
    const latest = await queryLatest(db.connection.queryStream, { device: `dev-0' OR "device" =~ /.*/ --\n`, sinceMs: Date.now() - 3_600_000, maxSeries: 100 });
    expect(latest).toEqual([]);
  });

  it('rejects with InfluxDB\'s reason for a database that does not exist, and with the cause when InfluxDB is unreachable', async () => {
    const missing = connectInflux(`${db.url.slice(0, db.url.lastIndexOf('/'))}/no_such_db_${process.pid}`);
    await expect(queryLatest(missing.queryStream, { sinceMs: 0, maxSeries: 10 })).rejects.toThrow(/database not found/);
    const nobody = await unreachable();
    try {
      const down = connectInflux(nobody.url('/pulsewire'));
      await expect(queryLatest(down.queryStream, { sinceMs: 0, maxSeries: 10 })).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    } finally {
      await nobody.release();
    }
  });
});
