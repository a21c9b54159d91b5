/**
 * Dead letters are bounded (PULSEWIRE_DEAD_LETTERS_MAX): past the bound the
 * oldest go, in the commit that adds the newest, and are counted. As in
 * dead-letters.test.ts the conflict is made in a shard of its own, with the
 * hub's clock pinned, so nothing depends on the calendar.
 */
import { Encoder } from 'cbor-x';
import { open, type RootDatabase } from 'lmdb';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DeadLetters } from '../../src/storage/dead-letters.js';
import { TestDevice } from '../support/device-client.js';
import { startHub, type TestHub } from '../support/hub.js';

const cbor = new Encoder({ useRecords: false, mapsAsObjects: false, tagUint8Array: false, variableMapSize: true });
const rec = (entries: [number, unknown][]) => new Map(entries);
const US = 1_000_000;

describe('DeadLetters bound', () => {
  let dir: string;
  let root: RootDatabase;
  afterEach(async () => {
    await root?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps the newest `max`, counts the dropped ones, and trims at open when the bound was lowered', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pulsewire-dl-'));
    root = open({ path: dir });
    const letters = new DeadLetters(root.openDB({ name: 'dead-letters' }), () => 0, 3);
    for (let i = 1; i <= 5; i++) await letters.add(`d-${i}`, [], 'refused');
    expect(letters.count).toBe(3);
    expect(letters.droppedSinceStart).toBe(2);
    expect(letters.page(10).deadLetters.map((l) => l.deviceId)).toEqual(['d-5', 'd-4', 'd-3']);

    const lowered = new DeadLetters(root.openDB({ name: 'dead-letters' }), () => 0, 1);
    expect(lowered.count).toBe(1);
    await root.flushed;
    expect(lowered.page(10).deadLetters.map((l) => l.deviceId)).toEqual(['d-5']);
    // Ids go on from the newest kept, never reused.
    await lowered.add('d-6', [], 'refused');
    expect(lowered.page(10).deadLetters.map((l) => [l.id, l.deviceId])).toEqual([[6, 'd-6']]);
  });
});

describe('PULSEWIRE_DEAD_LETTERS_MAX on a hub', () => {
  const nowS = Date.parse('2025-11-26T12:00:00Z') / 1000;
  const oldS = nowS - 10 * 86_400;
  let hub: TestHub;
  beforeAll(async () => { hub = await startHub({ PULSEWIRE_DEAD_LETTERS_MAX: '2' }, { nowUs: () => nowS * US }); });
  afterAll(async () => { await hub?.close(); });

  it('four refused messages leave the newest two letters, and two counted as dropped', async () => {
    await hub.db.connection.influx.writePoints(
      [{ measurement: 'telemetry', tags: { device: 'dl-1', name: 'x' }, fields: { value: 'a string' }, timestamp: String(oldS * US) }],
      { precision: 'u' },
    );
    const device = await TestDevice.connect(hub.deviceUrl, { id: 'dl-1' });
    for (let seq = 1; seq <= 4; seq++) {
      device.send(cbor.encode([1, seq, [rec([[0, 'x'], [2, seq], [6, oldS + seq]])]]));
      expect(await device.next()).toEqual({ type: 2, seq });
    }
    await device.close();
    await hub.db.query('SHOW MEASUREMENTS'); // waits until the spool drained: every letter written
    const letters = await hub.api('GET', '/v1/dead-letters');
    expect(letters.body.deadLetters.map((l: { points: { fields: { value: number } }[] }) => l.points[0]!.fields.value)).toEqual([4, 3]);
    const metrics = (await hub.api('GET', '/metrics')).body as string;
    expect(metrics).toMatch(/^pulsewire_dead_letters 2$/m);
    expect(metrics).toMatch(/^pulsewire_dead_letters_dropped_total 2$/m);
  });
});
