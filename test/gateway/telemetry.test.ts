import { Encoder } from 'cbor-x';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDevice } from '../support/device-client.js';
import { startHub, type TestHub } from '../support/hub.js';

// An independent encoder, as third-party firmware tooling would use: plain CBOR, no tags.
const cbor = new Encoder({ useRecords: false, mapsAsObjects: false, tagUint8Array: false, variableMapSize: true });
const encode = (value: unknown) => cbor.encode(value);
const rec = (entries: [number | string, unknown][]) => new Map(entries);

const VECTOR_TELEMETRY = '83010782a5006474656d70016343656c02fb4037800000000000216664657634322f221a69248100a4006368756d01632552480218290601';
const VECTOR_TIME_S = 1_764_000_000;

describe('TELEMETRY and ACK', () => {
  let hub: TestHub;
  let nowUs = (VECTOR_TIME_S + 60) * 1_000_000;
  beforeAll(async () => {
    hub = await startHub({ PULSEWIRE_MAX_NAMES_PER_DEVICE: '20' }, { nowUs: () => nowUs });
  });
  afterAll(async () => { await hub?.close(); });

  it('stores the protocol test vector exactly and answers 820207, then 83020701 for the resend', async () => {
    const device = await TestDevice.connect(hub.deviceUrl, { id: 'vec-1' });
    device.sendHex(VECTOR_TELEMETRY);
    expect(await device.next()).toEqual({ type: 2, seq: 7 });
    expect(device.rawFrames[0]).toBe('820207');

    device.sendHex(VECTOR_TELEMETRY);
    await device.next();
    expect(device.rawFrames[1]).toBe('83020701');
    await device.close();

    const rows = await hub.db.query(
      `SELECT "value", "device", "name", "unit" FROM "telemetry" WHERE "device" = 'vec-1' ORDER BY time ASC`,
    );
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatchObject({ device: 'vec-1', name: 'dev42/temp', unit: 'Cel', value: 23.5 });
    expect(rows[0]!.time).toBe(VECTOR_TIME_S * 1_000_000);
    expect(rows[1]).toMatchObject({ name: 'dev42/hum', unit: '%RH', value: 41 });
    expect(rows[1]!.time).toBe((VECTOR_TIME_S + 1) * 1_000_000);
  });

  it('recognises a resend after a reconnect and stores nothing twice', async () => {
    const first = await TestDevice.connect(hub.deviceUrl, { id: 'resend-1' });
    const msg = encode([1, 100, [rec([[0, 'x'], [2, 1.5], [6, VECTOR_TIME_S + 10]])]]);
    first.send(msg);
    expect(await first.next()).toEqual({ type: 2, seq: 100 });
    await first.close();
    const second = await TestDevice.connect(hub.deviceUrl, { id: 'resend-1' });
    second.send(msg);
    expect(await second.next()).toEqual({ type: 2, seq: 100, code: 1 });
    await second.close();
    const rows = await hub.db.query(`SELECT count("value") FROM "telemetry" WHERE "device" = 'resend-1'`);
    expect(rows[0]).toMatchObject({ count: 1 });
  });

  it('stores a different message under a remembered seq (a rebooted device), and acknowledges it as new', async () => {
    const device = await TestDevice.connect(hub.deviceUrl, { id: 'reboot-1' });
    device.send(encode([1, 0, [rec([[0, 'x'], [2, 1], [6, VECTOR_TIME_S + 1]])]]));
    expect(await device.next()).toEqual({ type: 2, seq: 0 });
    device.send(encode([1, 0, [rec([[0, 'x'], [2, 2], [6, VECTOR_TIME_S + 2]])]]));
    expect(await device.next()).toEqual({ type: 2, seq: 0 });
    await device.close();
    const rows = await hub.db.query(`SELECT "value" FROM "telemetry" WHERE "device" = 'reboot-1' ORDER BY time ASC`);
    expect(rows.map((r) => r.value)).toEqual([1, 2]);
  });

  it('resolves base values, relative times, every value kind and text labels', async () => {
    const device = await TestDevice.connect(hub.deviceUrl, { id: 'kinds-1' });
    device.send(encode([1, 1, [
      rec([[-2, 'room/'], [-3, 0], [-4, 'Cel'], [-5, 20], [0, 't'], [2, 1.25], [6, -10]]),
      rec([[0, 'label'], [3, 'hello'], [1, 'txt']]),
      rec([[0, 'door'], [4, true]]),
      rec([[0, 'blob'], [8, new Uint8Array([0xde, 0xad])]]),
      rec([['n', 'energy'], ['s', 12.5], ['u', 'Wh']]),
    ]]));
    expect(await device.next()).toEqual({ type: 2, seq: 1 });
    await device.close();
    const t = await hub.db.query(`SELECT "value", "unit" FROM "telemetry" WHERE "name" = 'room/t' AND "device" = 'kinds-1'`);
    expect(t[0]).toMatchObject({ value: 21.25, unit: 'Cel' });
    expect(t.map((r) => r.time)).toEqual([nowUs - 10_000_000]);
    const text = await hub.db.query(`SELECT "text" FROM "telemetry" WHERE "name" = 'room/label'`);
    expect(text[0]).toMatchObject({ text: 'hello' });
    const flag = await hub.db.query(`SELECT "flag" FROM "telemetry" WHERE "name" = 'room/door'`);
    expect(flag[0]).toMatchObject({ flag: true });
    const data = await hub.db.query(`SELECT "data" FROM "telemetry" WHERE "name" = 'room/blob'`);
    expect(data[0]).toMatchObject({ data: Buffer.from([0xde, 0xad]).toString('base64') });
    const sum = await hub.db.query(`SELECT "sum", "unit" FROM "telemetry" WHERE "name" = 'room/energy'`);
    expect(sum[0]).toMatchObject({ sum: 12.5, unit: 'Wh' });
  });

  it('answers code 2 for a malformed pack and 3 for a time out of range, and stores neither', async () => {
    const device = await TestDevice.connect(hub.deviceUrl, { id: 'bad-1' });
    device.send(encode([1, 1, [rec([[0, 'x']])]])); // no value
    expect(await device.next()).toMatchObject({ type: 2, seq: 1, code: 2 });
    device.send(encode([1, 2, [rec([[0, 'x'], [2, 1], [6, VECTOR_TIME_S - 40 * 86_400]])]]));
    expect(await device.next()).toMatchObject({ type: 2, seq: 2, code: 3 });
    device.send(encode([1, 3, [rec([[0, 'x'], [2, 1], [6, VECTOR_TIME_S + 3600]])]]));
    expect(await device.next()).toMatchObject({ type: 2, seq: 3, code: 3 });
    device.send(encode([1, 4, 'not a pack']));
    expect(await device.next()).toMatchObject({ type: 2, seq: 4, code: 2 });
    expect(device.socket.readyState).toBe(device.socket.OPEN);
    await device.close();
    expect(await hub.db.query(`SELECT * FROM "telemetry" WHERE "device" = 'bad-1'`)).toHaveLength(0);
  });

  it('refuses an injection attempt through a unit with code 2 and writes nothing', async () => {
    const device = await TestDevice.connect(hub.deviceUrl, { id: 'inject-1' });
    device.send(encode([1, 9, [rec([[0, 'temp'], [1, 'Cel\nother,device=x value=1'], [2, 1]])]]));
    const ack = await device.next();
    expect(ack).toMatchObject({ type: 2, seq: 9, code: 2 });
    // The reason names what is wrong: a unit with a character outside printable ASCII (the newline).
    expect((ack as { reason?: string }).reason).toMatch(/outside printable ASCII/);
    device.send(encode([1, 10, [rec([[0, 'temp" OR 1=1'], [2, 1]])]]));
    expect(await device.next()).toMatchObject({ seq: 10, code: 2 });
    await device.close();
    expect(await hub.db.query(`SELECT * FROM "telemetry" WHERE "device" = 'inject-1'`)).toHaveLength(0);
    expect(await hub.db.query(`SELECT * FROM "other"`)).toHaveLength(0);
    expect(await hub.db.query(`SELECT * FROM "telemetry" WHERE "device" = 'x'`)).toHaveLength(0);
  });

  it('answers code 5 when a device exceeds its distinct-name budget', async () => {
    const device = await TestDevice.connect(hub.deviceUrl, { id: 'names-1' });
    const many = Array.from({ length: 21 }, (_, i) => rec([[0, `n${i}`], [2, i]]));
    device.send(encode([1, 1, many.slice(0, 15)]));
    expect(await device.next()).toEqual({ type: 2, seq: 1 });
    device.send(encode([1, 2, many.slice(10)])); // 6 new names: 21 > 20
    expect(await device.next()).toMatchObject({ seq: 2, code: 5 });
    device.send(encode([1, 3, many.slice(0, 15)])); // known names are fine
    expect(await device.next()).toEqual({ type: 2, seq: 3 });
    await device.close();
  });

  it('accepts a bare SenML pack as fire-and-forget: stored, never acknowledged', async () => {
    const device = await TestDevice.connect(hub.deviceUrl, { id: 'bare-1' });
    device.send(encode([rec([[0, 'bare'], [2, 7]])]));
    device.send(encode([1, 1, [rec([[0, 'after'], [2, 8]])]]));
    expect(await device.next()).toEqual({ type: 2, seq: 1 }); // the only answer is the envelope's ACK
    await device.close();
    await expect.poll(async () => (await hub.db.query(`SELECT "value" FROM "telemetry" WHERE "device" = 'bare-1' AND "name" = 'bare'`)).length).toBe(1);
    expect(device.rawFrames).toEqual(['820201']);
  });

  it('keeps 32 messages in flight per device and acknowledges every one', async () => {
    const device = await TestDevice.connect(hub.deviceUrl, { id: 'window-1' });
    for (let seq = 0; seq < 200; seq++) device.send(encode([1, seq, [rec([[0, 'w'], [2, seq], [6, -seq / 1000]])]]));
    const seqs = new Set<number>();
    for (let i = 0; i < 200; i++) {
      const ack = await device.next();
      expect(ack).toMatchObject({ type: 2 });
      expect((ack as { code?: number }).code ?? 0).toBe(0);
      seqs.add((ack as { seq: number }).seq);
    }
    expect(seqs.size).toBe(200);
    await device.close();
    const rows = await hub.db.query(`SELECT count("value") FROM "telemetry" WHERE "device" = 'window-1'`);
    expect(rows[0]).toMatchObject({ count: 200 });
  });
});

describe('frames that close the connection', () => {
  let hub: TestHub;
  beforeAll(async () => { hub = await startHub({ PULSEWIRE_MAX_MESSAGE_BYTES: '1024' }); });
  afterAll(async () => { await hub?.close(); });

  const cases: [string, (d: TestDevice) => void, number][] = [
    ['a text frame', (d) => d.send('[1, 1, []]'), 1003],
    ['a frame over the size limit', (d) => d.send(new Uint8Array(2048)), 1009],
    ['bytes that are not CBOR', (d) => d.sendHex('ff00'), 1007],
    ['truncated CBOR', (d) => d.sendHex('83010782'), 1007],
    ['a CBOR tag', (d) => d.sendHex('c11a69248100'), 1007],
    ['a cbor-x record extension tag', (d) => d.sendHex('d9dfff8301078100'), 1007],
    ['nesting deeper than 16', (d) => d.sendHex('81'.repeat(17) + '00'), 1007],
    ['1000 nested arrays', (d) => d.sendHex('81'.repeat(1000) + '00'), 1007],
    ['not an array', (d) => d.send(encode({ type: 1 })), 1007],
    ['an unknown message type', (d) => d.send(encode([9, 1])), 1007],
    ['a seq that is not an unsigned integer', (d) => d.send(encode([1, -1, []])), 1007],
    ['a seq of 2^32', (d) => d.send(encode([1, 2 ** 32, []])), 1007],
    ['a hub-to-device type', (d) => d.send(encode([2, 1])), 1007],
  ];

  for (const [what, send, expected] of cases) {
    it(`closes with ${expected} on ${what}, with a reason`, async () => {
      const device = await TestDevice.connect(hub.deviceUrl, { id: 'bad-frames' });
      send(device);
      const closed = await device.closed;
      expect(closed.code).toBe(expected);
      if (expected !== 1009) expect(closed.reason.length).toBeGreaterThan(0);
    });
  }

  it('keeps what was acknowledged before an invalid frame', async () => {
    const device = await TestDevice.connect(hub.deviceUrl, { id: 'ack-then-bad' });
    device.send(encode([1, 1, [rec([[0, 'kept'], [2, 1]])]]));
    expect(await device.next()).toEqual({ type: 2, seq: 1 });
    device.sendHex('ff');
    expect((await device.closed).code).toBe(1007);
    expect(await hub.db.query(`SELECT * FROM "telemetry" WHERE "device" = 'ack-then-bad'`)).toHaveLength(1);
    // Protocol section 4's reasons: a bad frame takes the device offline with 'error'.
    await expect.poll(async () => (await hub.api('GET', '/v1/devices/ack-then-bad')).body.offlineReason).toBe('error');
  });
});
