import type { IPoint } from 'influx';
import { describe, expect, it } from 'vitest';
import { isPulsewireError } from '../../src/errors/catalog.js';
import type { Reading } from '../../src/protocol/messages.js';
import { MEASUREMENT, readingPoints, statusPoint, WRITE_PRECISION } from '../../src/storage/schema.js';
import { nodeInfluxBody } from '../support/node-influx-body.js';

const lineProtocol = nodeInfluxBody;

const at = 1_764_000_000_123_456;

describe('readingPoints', () => {
  it('maps each kind to its own field with device, name and unit tags', () => {
    const readings: Reading[] = [
      { name: 'dev42/temp', unit: 'Cel', timeUs: at, kind: 'value', value: 23.5 },
      { name: 'dev42/label', timeUs: at + 1, kind: 'text', value: 'hi "there"' },
      { name: 'dev42/door', timeUs: at + 2, kind: 'flag', value: false },
      { name: 'dev42/blob', timeUs: at + 3, kind: 'data', value: new Uint8Array([0, 1, 254, 255]) },
      { name: 'dev42/energy', unit: 'J', timeUs: at + 4, kind: 'sum', value: 1200 },
    ];
    expect(readingPoints('dev42', readings)).toEqual([
      { measurement: 'telemetry', tags: { device: 'dev42', name: 'dev42/temp', unit: 'Cel' }, fields: { value: 23.5 }, timestamp: String(at) },
      { measurement: 'telemetry', tags: { device: 'dev42', name: 'dev42/label' }, fields: { text: 'hi "there"' }, timestamp: String(at + 1) },
      { measurement: 'telemetry', tags: { device: 'dev42', name: 'dev42/door' }, fields: { flag: false }, timestamp: String(at + 2) },
      { measurement: 'telemetry', tags: { device: 'dev42', name: 'dev42/blob' }, fields: { data: 'AAH+/w==' }, timestamp: String(at + 3) },
      { measurement: 'telemetry', tags: { device: 'dev42', name: 'dev42/energy', unit: 'J' }, fields: { sum: 1200 }, timestamp: String(at + 4) },
    ]);
  });

  it('base64-encodes only the bytes of a Uint8Array view, not its whole buffer', () => {
    const view = new Uint8Array([9, 9, 0x61, 0x62, 9]).subarray(2, 4);
    const [point] = readingPoints('d', [{ name: 'b', timeUs: 1, kind: 'data', value: view }]);
    expect(point?.fields).toEqual({ data: Buffer.from('ab').toString('base64') });
  });

  it('omits an empty unit, since line protocol has no empty tag value', () => {
    const [point] = readingPoints('d', [{ name: 'n', unit: '', timeUs: 1, kind: 'value', value: 1 }]);
    expect(point?.tags).toEqual({ device: 'd', name: 'n' });
  });

  it('writes integers as floats (no i suffix) and timestamps as exact microseconds', async () => {
    const body = await lineProtocol(
      readingPoints('dev42', [
        { name: 'hum', unit: '%RH', timeUs: at, kind: 'value', value: 41 },
        { name: 'big', timeUs: 0, kind: 'sum', value: 1e21 },
      ]),
    );
    expect(body).toBe(`telemetry,device=dev42,name=hum,unit=%RH value=41 ${at}\ntelemetry,device=dev42,name=big sum=1e+21 0`);
    expect(body).not.toMatch(/\d+i\b/);
  });

  it('keeps time 0 (node-influx would otherwise stamp the point with the server clock)', async () => {
    const body = await lineProtocol(readingPoints('d', [{ name: 'n', timeUs: 0, kind: 'flag', value: true }]));
    expect(body).toBe('telemetry,device=d,name=n flag=true 0');
  });

  it('escapes spaces and commas in tags and quotes in strings', async () => {
    const body = await lineProtocol(readingPoints('d', [{ name: 'n', unit: 'a b,c', timeUs: 5, kind: 'text', value: 'say "x"' }]));
    expect(body).toBe('telemetry,device=d,name=n,unit=a\\ b\\,c text="say \\"x\\"" 5');
  });

  it('refuses values that have no line-protocol form or do not match their kind', () => {
    const bad: Reading[] = [
      { name: 'n', timeUs: 1, kind: 'value', value: Number.NaN },
      { name: 'n', timeUs: 1, kind: 'sum', value: Number.POSITIVE_INFINITY },
      { name: 'n', timeUs: 1, kind: 'flag', value: 'true' },
      { name: 'n', timeUs: 1, kind: 'data', value: 'AAH+' },
    ];
    for (const reading of bad) {
      expect(() => readingPoints('d', [reading]), JSON.stringify(reading)).toThrow(
        expect.objectContaining({ code: 'PW_ERR_PACK_MALFORMED' }),
      );
    }
  });

  it('truncates sub-microsecond time and refuses times beyond exact integers', () => {
    expect(readingPoints('d', [{ name: 'n', timeUs: 12.9, kind: 'flag', value: true }])[0]?.timestamp).toBe('12');
    try {
      readingPoints('d', [{ name: 'n', timeUs: 2 ** 60, kind: 'flag', value: true }]);
      expect.unreachable();
    } catch (err) {
      expect(isPulsewireError(err, 'PW_ERR_TIME_RANGE')).toBe(true);
    }
  });
});

describe('statusPoint', () => {
  it('records online changes with a reason on device_status', async () => {
    const point = statusPoint('dev42', false, 'ping-timeout', at);
    expect(point).toEqual({
      measurement: MEASUREMENT.DEVICE_STATUS,
      tags: { device: 'dev42' },
      fields: { online: false, reason: 'ping-timeout' },
      timestamp: String(at),
    });
    expect(await lineProtocol([point])).toBe(`device_status,device=dev42 online=false,reason="ping-timeout" ${at}`);
  });
});
