import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { IPoint } from 'influx';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PulsewireError } from '../../src/errors/catalog.js';
import { connectInflux } from '../../src/storage/influx-connection.js';
import { readingPoints } from '../../src/storage/schema.js';
import { PointWriter } from '../../src/storage/writer.js';
import { freshDatabase, type FreshDatabase } from '../support/influx.js';
import { unreachable } from '../support/ports.js';

let db: FreshDatabase;
beforeAll(async () => {
  db = await freshDatabase('writer');
});
afterAll(async () => {
  await db?.drop();
});

function writerFor(url: string, options: { maxBatchPoints?: number; retryForMs?: number } = {}): PointWriter {
  return new PointWriter(connectInflux(url, { requestTimeoutMs: 2000 }), options);
}

const T0 = 1_764_000_000_000_001;

describe('PointWriter against influxd', () => {
  it('stores exact values and microsecond timestamps', async () => {
    const writer = writerFor(db.url);
    await writer.write(
      readingPoints('exact', [
        { name: 'temp', unit: 'Cel', timeUs: T0, kind: 'value', value: 23.5 },
        { name: 'hum', unit: '%RH', timeUs: T0 + 999_999, kind: 'value', value: 41 },
        { name: 'pi', timeUs: T0 + 2, kind: 'value', value: Math.PI },
        { name: 'label', timeUs: T0 + 3, kind: 'text', value: 'line1\nline2 "q" \\ é' },
        { name: 'door', timeUs: T0 + 4, kind: 'flag', value: true },
        { name: 'blob', timeUs: T0 + 5, kind: 'data', value: new Uint8Array([0, 255, 10]) },
        { name: 'energy', unit: 'J', timeUs: T0 + 6, kind: 'sum', value: -0.000125 },
      ]),
    );
    const rows = await db.query(`SELECT * FROM telemetry WHERE device = 'exact' ORDER BY time`);
    expect(rows.map((r) => [r.time, r['name'], r['unit'], r['value'], r['text'], r['flag'], r['data'], r['sum']])).toEqual([
      [T0, 'temp', 'Cel', 23.5, null, null, null, null],
      [T0 + 2, 'pi', null, Math.PI, null, null, null, null],
      [T0 + 3, 'label', null, null, 'line1\nline2 "q" \\ é', null, null, null],
      [T0 + 4, 'door', null, null, null, true, null, null],
      [T0 + 5, 'blob', null, null, null, null, 'AP8K', null],
      [T0 + 6, 'energy', 'J', null, null, null, null, -0.000125],
      [T0 + 999_999, 'hum', '%RH', 41, null, null, null, null],
    ]);
    // 41 went out without an "i": a later 41.5 must not be a type conflict.
    const fieldTypes = await db.query<{ time: number; fieldKey: string; fieldType: string }>('SHOW FIELD KEYS FROM telemetry');
    expect(fieldTypes.find((f) => f.fieldKey === 'value')?.fieldType).toBe('float');
    expect(writer.stats.pointsWritten).toBe(7);
  });

  it('group-commits 100 writes of one turn into one request', async () => {
    const writer = writerFor(db.url);
    const writes = Array.from({ length: 100 }, (_, i) =>
      writer.write(readingPoints('flood', [{ name: 'n', timeUs: T0 + i, kind: 'value', value: i }])),
    );
    await Promise.all(writes);
    // All were queued before the pump's microtask ran, and 100 points fit one request.
    expect(writer.stats.batches).toBe(1);
    expect(writer.stats.pointsWritten).toBe(100);
    expect(writer.stats.queuedPoints).toBe(0);
    const [count] = await db.query(`SELECT count(value) FROM telemetry WHERE device = 'flood'`);
    expect(count?.['count']).toBe(100);
  });

  it('keeps batches within maxBatchPoints while requests are in flight', async () => {
    const writer = writerFor(db.url, { maxBatchPoints: 10 });
    await Promise.all(
      Array.from({ length: 50 }, (_, i) => writer.write(readingPoints('capped', [{ name: 'n', timeUs: T0 + i, kind: 'value', value: i }]))),
    );
    // Queued in one turn: two requests of 10 start at once, each finished one makes room for the next 10.
    expect(writer.stats.batches).toBe(5);
    expect(writer.stats.pointsWritten).toBe(50);
    const [count] = await db.query(`SELECT count(value) FROM telemetry WHERE device = 'capped'`);
    expect(count?.['count']).toBe(50);
  });

  it('writes a drain round of 10,001 one-line groups in order, in batches within maxBatchPoints, each group settled once', async () => {
    const writer = writerFor(db.url, { maxBatchPoints: 1000 });
    const groups = Array.from({ length: 10_001 }, (_, i) => ({ lines: `telemetry,device=many,name=n value=${i} ${T0 + i}`, count: 1 }));
    const errors = await writer.writeEach(groups);
    expect(errors).toHaveLength(10_001);
    expect(errors.every((e) => e === undefined)).toBe(true);
    // Ten full requests and one of the last group: the queue is taken from the front, none skipped or taken twice.
    expect(writer.stats.batches).toBe(11);
    expect(writer.stats.pointsWritten).toBe(10_001);
    expect(writer.stats.queuedPoints).toBe(0);
    const [count] = await db.query(`SELECT count(value), sum(value) FROM telemetry WHERE device = 'many'`);
    expect(count?.['count']).toBe(10_001);
    expect(count?.['sum']).toBe((10_000 * 10_001) / 2);
  });

  it('rejects only the group with a field type conflict; the others land', async () => {
    const writer = writerFor(db.url);
    await writer.write(readingPoints('conflict', [{ name: 'n', timeUs: T0, kind: 'value', value: 1 }]));
    const bad: IPoint = { measurement: 'telemetry', tags: { device: 'conflict', name: 'n' }, fields: { value: 'a string' }, timestamp: String(T0 + 1) };
    const good = (i: number): IPoint[] => readingPoints('conflict', [{ name: 'n', timeUs: T0 + 10 + i, kind: 'value', value: i }]);
    const before = writer.stats.batches;
    const results = await Promise.allSettled([writer.write(good(0)), writer.write([bad]), writer.write(good(1)), writer.write(good(2))]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    const reason = (results[1] as PromiseRejectedResult).reason as PulsewireError;
    expect(reason).toBeInstanceOf(PulsewireError);
    expect(reason.code).toBe('PW_ERR_STORAGE_REJECTED');
    expect(reason.detail).toMatch(/field type conflict/);
    // One shared request, then one per group.
    expect(writer.stats.batches - before).toBe(5);
    expect(writer.stats.rejectedPoints).toBe(1);
    const rows = await db.query(`SELECT value FROM telemetry WHERE device = 'conflict' ORDER BY time`);
    expect(rows.map((r) => r['value'])).toEqual([1, 0, 1, 2]);
  });

  it('rejects with PW_ERR_STORAGE_UNAVAILABLE after retryForMs when influxd is unreachable', async () => {
    const nowhere = await unreachable();
    try {
      const writer = writerFor(nowhere.url('/nowhere'), { retryForMs: 400 });
      const started = Date.now();
      const error = await writer.write(readingPoints('d', [{ name: 'n', timeUs: 1, kind: 'value', value: 1 }])).catch((e: unknown) => e);
      const elapsed = Date.now() - started;
      expect(error).toBeInstanceOf(PulsewireError);
      expect((error as PulsewireError).code).toBe('PW_ERR_STORAGE_UNAVAILABLE');
      expect((error as PulsewireError).detail).toMatch(/ECONNREFUSED/);
      // It kept trying for the whole window (a lower bound: a busy machine only makes it later);
      // that it gives up at all is the write settling, well within the test's timeout.
      expect(elapsed).toBeGreaterThanOrEqual(400);
      expect(writer.stats.retries).toBeGreaterThan(0);
      expect(writer.stats.failedPoints).toBe(1);
    } finally {
      await nowhere.release();
    }
  });

  it('retries a 5xx and succeeds once the server recovers', async () => {
    let calls = 0;
    const bodies: string[] = [];
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        calls += 1;
        bodies.push(body);
        res.statusCode = calls <= 2 ? 503 : 204;
        res.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const writer = writerFor(`http://127.0.0.1:${port}/flaky`, { retryForMs: 5000 });
      await writer.write(readingPoints('d', [{ name: 'n', timeUs: 7, kind: 'value', value: 2 }]));
      expect(calls).toBe(3);
      expect(new Set(bodies)).toEqual(new Set(['telemetry,device=d,name=n value=2 7']));
      expect(writer.stats.retries).toBe(2);
      expect(writer.stats.pointsWritten).toBe(1);
    } finally {
      server.close();
    }
  });

  it('flush() waits for queued writes and close() refuses new ones', async () => {
    const writer = writerFor(db.url);
    let settled = 0;
    for (let i = 0; i < 20; i += 1) {
      void writer.write(readingPoints('flush', [{ name: 'n', timeUs: T0 + i, kind: 'flag', value: true }])).then(() => (settled += 1));
    }
    await writer.flush();
    await Promise.resolve();
    expect(settled).toBe(20);
    await writer.close();
    await expect(writer.write(readingPoints('flush', [{ name: 'n', timeUs: 1, kind: 'flag', value: true }]))).rejects.toMatchObject({
      code: 'PW_ERR_STORAGE_UNAVAILABLE',
    });
  });
});
