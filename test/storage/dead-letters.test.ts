/**
 * A field type conflict in InfluxDB: the offending points go to the dead
 * letters with InfluxDB's reason (visible in the API and metrics), the rest
 * of the same message and the rest of the stream are stored.
 *
 * Field types are per shard, and InfluxDB 1.x cuts the default policy's
 * 7-day shard groups at Monday 00:00 UTC. So nothing here depends on the
 * wall clock: the hub's clock is pinned, every reading carries an absolute
 * time, and every read is bounded by the times the test wrote. The pins
 * include the weekend (where `time < now() - 5d` used to reach into the
 * current shard and lose the string row, issue 15) and the Monday 00:00 UTC
 * at which a shard group begins.
 */
import { Encoder } from 'cbor-x';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDevice } from '../support/device-client.js';
import { startHub, type TestHub } from '../support/hub.js';

const cbor = new Encoder({ useRecords: false, mapsAsObjects: false, tagUint8Array: false, variableMapSize: true });
const rec = (entries: [number, unknown][]) => new Map(entries);
const DAY_S = 86_400;
const US = 1_000_000;

const PINNED_CLOCKS = [
  '2025-11-22T12:00:00Z', // a Saturday
  '2025-11-24T00:00:00Z', // a Monday, the first instant of a shard group
  '2025-11-26T12:00:00Z', // a Wednesday
];

describe.each(PINNED_CLOCKS)('field type conflict, hub clock at %s', (pinned) => {
  const nowS = Date.parse(pinned) / 1000;
  // Ten days before the hub's now: always another shard group than now's (groups are 7 days).
  const oldS = nowS - 10 * DAY_S;
  const recentS = nowS - 5;
  let hub: TestHub;
  beforeAll(async () => { hub = await startHub({}, { nowUs: () => nowS * US }); });
  afterAll(async () => { await hub?.close(); });

  it('dead-letters only the conflicting point, with the reason, and stores everything else', async () => {
    const startedMs = Date.now();
    // In the old shard `value` is a string from now on.
    await hub.db.connection.influx.writePoints(
      [{ measurement: 'telemetry', tags: { device: 'ft-1', name: 'x' }, fields: { value: 'a string' }, timestamp: String(oldS * US) }],
      { precision: 'u' },
    );
    const device = await TestDevice.connect(hub.deviceUrl, { id: 'ft-1' });
    device.send(cbor.encode([1, 1, [rec([[0, 'x'], [2, 1.5], [6, oldS + 1]]), rec([[0, 'y'], [3, 'fine'], [6, oldS + 2]])]]));
    device.send(cbor.encode([1, 2, [rec([[0, 'x'], [2, 2.5], [6, recentS]])]]));
    expect(await device.next()).toEqual({ type: 2, seq: 1 });
    expect(await device.next()).toEqual({ type: 2, seq: 2 });
    await device.close();

    // Each shard has its own field types: read the old readings and the recent one apart, each
    // within the times written, so neither range touches the other's shard.
    const old = await hub.db.query(
      `SELECT "value", "text", "name" FROM "telemetry" WHERE "device" = 'ft-1' AND time >= ${oldS * US}u AND time <= ${(oldS + 2) * US}u ORDER BY time`,
    );
    expect(old.map((r) => [r.time, r['name'], r['value'] ?? r['text']])).toEqual([[oldS * US, 'x', 'a string'], [(oldS + 2) * US, 'y', 'fine']]);
    const recent = await hub.db.query(`SELECT "value", "name" FROM "telemetry" WHERE "device" = 'ft-1' AND time = ${recentS * US}u`);
    expect(recent.map((r) => [r.time, r['name'], r['value']])).toEqual([[recentS * US, 'x', 2.5]]);

    const letters = await hub.api('GET', '/v1/dead-letters');
    expect(letters.status).toBe(200);
    expect(letters.body.deadLetters).toHaveLength(1);
    const [letter] = letters.body.deadLetters;
    expect(letter).toMatchObject({
      deviceId: 'ft-1',
      points: [{ measurement: 'telemetry', tags: { device: 'ft-1', name: 'x' }, fields: { value: 1.5 }, timestamp: String((oldS + 1) * US) }],
    });
    expect(letter.reason).toMatch(/field type conflict/);
    // Stamped by the hub's wall clock when it gave up on the point, during this test.
    expect(Date.parse(letter.at)).toBeGreaterThanOrEqual(startedMs);
    expect(Date.parse(letter.at)).toBeLessThanOrEqual(Date.now());
    expect(letters.body.nextCursor).toBeNull();

    const metrics = (await hub.api('GET', '/metrics')).body as string;
    expect(metrics).toMatch(/^pulsewire_dead_letters 1$/m);
    expect(metrics).toMatch(/^pulsewire_dead_letter_points_total 1$/m);
  });

  it('pages dead letters and needs the operator token', async () => {
    const first = await hub.api('GET', '/v1/dead-letters?limit=1');
    expect(first.body.deadLetters).toHaveLength(1);
    expect(first.body.deadLetters[0].points[0].fields).toEqual({ value: 1.5 });
    expect(first.body.nextCursor).toBeNull();
    expect((await hub.api('GET', '/v1/dead-letters', undefined, 'wrong-token-wrong-token')).status).toBe(401);
    expect((await hub.api('GET', '/v1/dead-letters?cursor=abc')).status).toBe(400);
  });
});
