/**
 * A hub upgraded over a data dir whose spool still holds entries in the
 * format before line protocol (JSON of point objects, both its shapes) drains
 * them into InfluxDB, each reading once, next to what it spools in the new
 * format. The old entries are written as the old spool wrote them: the
 * points of schema.ts, JSON.stringify'd, under the same lmdb database.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { open } from 'lmdb';
import { afterAll, describe, expect, it } from 'vitest';
import type { Reading } from '../../src/protocol/messages.js';
import { pointLine } from '../../src/storage/line-protocol.js';
import { readingPoints, statusPoint } from '../../src/storage/schema.js';
import { restartableHub } from '../support/hub.js';
import { waitFor } from '../support/wait.js';

const T0 = 1_764_000_000_000_000;

const readings = (n: number, at: number): Reading[] => [
  { name: 'temp', unit: 'Cel', timeUs: at, kind: 'value', value: n + 0.5 },
  { name: 'label', unit: 'a b,c=d', timeUs: at + 1, kind: 'text', value: `say "x" \\ ${n}` },
  { name: 'door', timeUs: at + 2, kind: 'flag', value: n % 2 === 0 },
];

let hubs: Awaited<ReturnType<typeof restartableHub>> | undefined;
afterAll(async () => {
  await hubs?.close();
});

describe('a spool written before line protocol', () => {
  it('drains every old entry into InfluxDB once, in order with the new ones', async () => {
    hubs = await restartableHub('spool-upgrade');
    const spoolDir = path.join(hubs.dataDir, 'spool');
    await mkdir(spoolDir, { recursive: true });
    const env = open({ path: spoolDir });
    const entries = env.openDB<string, number>({ name: 'entries', encoding: 'string' });
    // A record of one message (before group commit) and one of three (group commit), as JSON.
    await entries.put(1, JSON.stringify({ d: 'old-1', p: readingPoints('old-1', readings(0, T0)), at: 1_764_000_000_000 }));
    await entries.put(2, JSON.stringify({
      at: 1_764_000_000_100,
      m: [
        { d: 'old-1', p: readingPoints('old-1', readings(1, T0 + 10)) },
        { d: 'old-2', p: readingPoints('old-2', readings(2, T0 + 20)) },
        { d: 'old-2', p: [statusPoint('old-2', false, 'ping-timeout', T0 + 30)] },
      ],
    }));
    await env.close();

    const hub = await hubs.start();
    // A message spooled by the new hub, in the new format, behind the old ones.
    await hub.app.spool.appendLines('new-1', readingPoints('new-1', readings(3, T0 + 40)).map(pointLine).join('\n'), 3);
    // 4 x 3 readings and one status point; nothing else was spooled.
    await waitFor(() => hub.app.spool.stats.entries === 0, { what: 'the old entries drained', timeoutMs: 30_000 });
    expect(hub.app.drainer.stats.drainedPoints).toBe(13);
    const rows = await hub.db.query(`SELECT * FROM telemetry ORDER BY time`);
    expect(rows.map((r) => [r.time, r['device'], r['name'], r['unit'], r['value'], r['text'], r['flag']])).toEqual([
      [T0, 'old-1', 'temp', 'Cel', 0.5, null, null],
      [T0 + 1, 'old-1', 'label', 'a b,c=d', null, 'say "x" \\ 0', null],
      [T0 + 2, 'old-1', 'door', null, null, null, true],
      [T0 + 10, 'old-1', 'temp', 'Cel', 1.5, null, null],
      [T0 + 11, 'old-1', 'label', 'a b,c=d', null, 'say "x" \\ 1', null],
      [T0 + 12, 'old-1', 'door', null, null, null, false],
      [T0 + 20, 'old-2', 'temp', 'Cel', 2.5, null, null],
      [T0 + 21, 'old-2', 'label', 'a b,c=d', null, 'say "x" \\ 2', null],
      [T0 + 22, 'old-2', 'door', null, null, null, true],
      [T0 + 40, 'new-1', 'temp', 'Cel', 3.5, null, null],
      [T0 + 41, 'new-1', 'label', 'a b,c=d', null, 'say "x" \\ 3', null],
      [T0 + 42, 'new-1', 'door', null, null, null, false],
    ]);
    const status = await hub.db.query(`SELECT * FROM device_status`);
    expect(status.map((r) => [r.time, r['device'], r['online'], r['reason']])).toEqual([[T0 + 30, 'old-2', false, 'ping-timeout']]);
    await hub.close();

    // Nothing is left to deliver a second time: the next start finds the spool empty.
    const again = await hubs.start();
    expect(again.app.spool.stats).toMatchObject({ entries: 0, points: 0, bytes: 0 });
    await again.close();
  });
});
