/**
 * A field type conflict in InfluxDB: the offending points go to the dead
 * letters with InfluxDB's reason (visible in the API and metrics), the rest
 * of the same message and the rest of the stream are stored.
 */
import { Encoder } from 'cbor-x';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDevice } from '../support/device-client.js';
import { startHub, type TestHub } from '../support/hub.js';

const cbor = new Encoder({ useRecords: false, mapsAsObjects: false, tagUint8Array: false, variableMapSize: true });
const rec = (entries: [number, unknown][]) => new Map(entries);

describe('field type conflict', () => {
  let hub: TestHub;
  beforeAll(async () => { hub = await startHub(); });
  afterAll(async () => { await hub?.close(); });

  it('dead-letters only the conflicting point, with the reason, and stores everything else', async () => {
    // Ten days ago: its own shard, where `value` is a string from now on. (Shards are 7 days.)
    const oldS = Math.floor(Date.now() / 1000) - 10 * 86_400;
    const nowS = Math.floor(Date.now() / 1000) - 5;
    await hub.db.connection.influx.writePoints(
      [{ measurement: 'telemetry', tags: { device: 'ft-1', name: 'x' }, fields: { value: 'a string' }, timestamp: String(oldS * 1_000_000) }],
      { precision: 'u' },
    );
    const device = await TestDevice.connect(hub.deviceUrl, { id: 'ft-1' });
    device.send(cbor.encode([1, 1, [rec([[0, 'x'], [2, 1.5], [6, oldS + 1]]), rec([[0, 'y'], [3, 'fine'], [6, oldS + 2]])]]));
    device.send(cbor.encode([1, 2, [rec([[0, 'x'], [2, 2.5], [6, nowS]])]]));
    expect(await device.next()).toEqual({ type: 2, seq: 1 });
    expect(await device.next()).toEqual({ type: 2, seq: 2 });
    await device.close();

    // Each shard has its own field types: query the old one and the current one apart.
    const old = await hub.db.query(`SELECT "value", "text", "name" FROM "telemetry" WHERE "device" = 'ft-1' AND time < now() - 5d ORDER BY time`);
    expect(old.map((r) => [r['name'], r['value'] ?? r['text']])).toEqual([['x', 'a string'], ['y', 'fine']]);
    const recent = await hub.db.query(`SELECT "value", "name" FROM "telemetry" WHERE "device" = 'ft-1' AND time > now() - 5d`);
    expect(recent.map((r) => [r['name'], r['value']])).toEqual([['x', 2.5]]);

    const letters = await hub.api('GET', '/v1/dead-letters');
    expect(letters.status).toBe(200);
    expect(letters.body.deadLetters).toHaveLength(1);
    const [letter] = letters.body.deadLetters;
    expect(letter).toMatchObject({ deviceId: 'ft-1', points: [{ measurement: 'telemetry', tags: { device: 'ft-1', name: 'x' }, fields: { value: 1.5 } }] });
    expect(letter.reason).toMatch(/field type conflict/);
    expect(Date.parse(letter.at)).toBeGreaterThan(Date.now() - 60_000);
    expect(letters.body.nextCursor).toBeNull();

    const metrics = (await hub.api('GET', '/metrics')).body as string;
    expect(metrics).toMatch(/^pulsewire_dead_letters 1$/m);
    expect(metrics).toMatch(/^pulsewire_dead_letter_points_total 1$/m);
  });

  it('pages dead letters newest first and needs the operator token', async () => {
    const first = await hub.api('GET', '/v1/dead-letters?limit=1');
    expect(first.body.deadLetters).toHaveLength(1);
    expect((await hub.api('GET', '/v1/dead-letters', undefined, 'wrong-token-wrong-token')).status).toBe(401);
    expect((await hub.api('GET', '/v1/dead-letters?cursor=abc')).status).toBe(400);
  });
});
