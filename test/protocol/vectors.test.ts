/** protocol-v1.md section 7, byte for byte, in both directions. */
import { describe, it, expect } from 'vitest';
import {
  decodeDeviceFrame, decodeHubFrame, encodeAck, encodeCommand, encodeDesired, encodeReported, encodeResult,
  encodeTelemetry, resolvePack, senmlRecord, type DeviceMessage, type HubMessage,
} from '../../src/protocol/index.js';
import { PulsewireError } from '../../src/errors/catalog.js';

const V = {
  telemetry: '83010782a5006474656d70016343656c02fb4037800000000000216664657634322f221a69248100a4006368756d01632552480218290601',
  ack: '820207',
  ackDuplicate: '83020701',
  command: '840364632d30316c7365745f696e74657276616ca1677365636f6e6473181e',
  result: '840464632d303101a1626f6bf5',
  reported: '8205a262667765312e322e3068696e74657276616c181e',
  desired: '830603a168696e74657276616c181e',
};
const bytes = (hex: string) => new Uint8Array(Buffer.from(hex, 'hex'));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function device(h: string): DeviceMessage {
  const msg = decodeDeviceFrame(bytes(h));
  if (msg instanceof PulsewireError) throw msg;
  return msg;
}
function hub(h: string): HubMessage {
  const msg = decodeHubFrame(bytes(h));
  if (msg instanceof PulsewireError) throw msg;
  return msg;
}
const vectorRecords = [
  senmlRecord({ bn: 'dev42/', bt: 1764000000, n: 'temp', u: 'Cel', v: 23.5 }),
  senmlRecord({ n: 'hum', u: '%RH', v: 41, t: 1 }),
];

describe('TELEMETRY vector', () => {
  it('decodes to seq 7 and a two-record pack with integer labels', () => {
    const msg = device(V.telemetry);
    expect(msg.type).toBe(1);
    if (msg.type !== 1) return;
    expect(msg.seq).toBe(7);
    expect(msg.pack).toEqual([
      new Map<number, unknown>([[0, 'temp'], [1, 'Cel'], [2, 23.5], [-2, 'dev42/'], [-3, 1764000000]]),
      new Map<number, unknown>([[0, 'hum'], [1, '%RH'], [2, 41], [6, 1]]),
    ]);
  });

  it('resolves to the two readings of the spec', () => {
    const msg = device(V.telemetry);
    if (msg.type !== 1) throw new Error('not telemetry');
    const nowUs = 1764000000 * 1e6;
    expect(resolvePack(msg.pack, { nowUs })).toEqual({
      readings: [
        { name: 'dev42/temp', unit: 'Cel', timeUs: 1764000000000000, kind: 'value', value: 23.5 },
        { name: 'dev42/hum', unit: '%RH', timeUs: 1764000001000000, kind: 'value', value: 41 },
      ],
    });
  });

  it('is answered with ACK 3 by a hub whose clock is more than 30 days later', () => {
    const msg = device(V.telemetry);
    if (msg.type !== 1) throw new Error('not telemetry');
    const later = (1764000000 + 31 * 86400) * 1e6;
    const err = resolvePack(msg.pack, { nowUs: later });
    expect(err).toBeInstanceOf(PulsewireError);
    expect((err as PulsewireError).spec.ack).toBe(3);
  });

  it('encodes from SenML records to the exact vector, whatever the key insertion order', () => {
    expect(hex(encodeTelemetry(7, vectorRecords))).toBe(V.telemetry);
    const shuffled = [new Map<number, unknown>([[-3, 1764000000], [2, 23.5], [-2, 'dev42/'], [1, 'Cel'], [0, 'temp']]), vectorRecords[1]];
    expect(hex(encodeTelemetry(7, shuffled))).toBe(V.telemetry);
  });
});

describe('ACK vectors', () => {
  it('encodes an accepted ACK without a code', () => {
    expect(hex(encodeAck(7))).toBe(V.ack);
    expect(hex(encodeAck(7, 0))).toBe(V.ack);
  });
  it('encodes a duplicate ACK with code 1', () => {
    expect(hex(encodeAck(7, 1))).toBe(V.ackDuplicate);
  });
  it('decodes both', () => {
    expect(hub(V.ack)).toEqual({ type: 2, seq: 7 });
    expect(hub(V.ackDuplicate)).toEqual({ type: 2, seq: 7, code: 1 });
  });
  it('carries a reason as a fourth element', () => {
    expect(hex(encodeAck(7, 2, 'x'))).toBe('8402070261' + '78');
    expect(hub('8402070261' + '78')).toEqual({ type: 2, seq: 7, code: 2, reason: 'x' });
  });
});

describe('COMMAND, RESULT, REPORTED, DESIRED vectors', () => {
  it('COMMAND c-01 set_interval {seconds: 30}', () => {
    expect(hex(encodeCommand('c-01', 'set_interval', { seconds: 30 }))).toBe(V.command);
    expect(hub(V.command)).toEqual({ type: 3, commandId: 'c-01', name: 'set_interval', args: new Map([['seconds', 30]]) });
  });
  it('RESULT c-01 succeeded {ok: true}', () => {
    expect(device(V.result)).toEqual({ type: 4, commandId: 'c-01', status: 1, payload: new Map([['ok', true]]) });
    expect(hex(encodeResult('c-01', 1, { ok: true }))).toBe(V.result);
  });
  it('REPORTED {fw: "1.2.0", interval: 30}', () => {
    expect(device(V.reported)).toEqual({ type: 5, state: new Map<string, unknown>([['fw', '1.2.0'], ['interval', 30]]) });
    expect(hex(encodeReported({ fw: '1.2.0', interval: 30 }))).toBe(V.reported);
    expect(hex(encodeReported({ interval: 30, fw: '1.2.0' }))).toBe(V.reported);
  });
  it('DESIRED version 3 {interval: 30}', () => {
    expect(hex(encodeDesired(3, { interval: 30 }))).toBe(V.desired);
    expect(hex(encodeDesired(3, new Map([['interval', 30]])))).toBe(V.desired);
    expect(hub(V.desired)).toEqual({ type: 6, version: 3, state: new Map([['interval', 30]]) });
  });
});
