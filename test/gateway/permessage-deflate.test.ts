/**
 * PULSEWIRE_PERMESSAGE_DEFLATE=true on the wire, seen by a client on a bare
 * TCP socket: the hub accepts the offered extension in its 101, inflates a
 * compressed TELEMETRY frame (RSV1 set), and sends a large COMMAND
 * compressed (RSV1 set, fewer bytes, inflating to the exact COMMAND
 * encoding), and holds PULSEWIRE_MAX_MESSAGE_BYTES against the inflated
 * size (a compressed bomb closes with 1009). With the default (false) the
 * same offer is declined and the same COMMAND goes out plain.
 *
 * The client asks for no context takeover in both directions, so every
 * compressed message stands alone (RFC 7692 7.1.1).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeHubFrame } from '../../src/protocol/codec.js';
import { encodeCommand, encodeTelemetry } from '../../src/protocol/encode.js';
import { senmlRecord } from '../../src/protocol/senml-labels.js';
import { basic } from '../support/http-device.js';
import { startHub, type TestHub } from '../support/hub.js';
import { deflateMessage, inflateMessage, RawWebSocket } from '../support/raw-websocket.js';

const OFFER = 'permessage-deflate; client_no_context_takeover; server_no_context_takeover';
/** Compressible and well over ws's 1 KiB threshold below which it sends messages plain. */
const BIG_ARGS = { pattern: 'on-off-'.repeat(600) };

async function connectRaw(hub: TestHub, deviceId: string, secret: string): Promise<RawWebSocket> {
  const { hostname, port } = new URL(hub.baseUrl);
  return RawWebSocket.connect(hostname, Number(port), '/v1/device', {
    'Sec-WebSocket-Protocol': 'pulsewire.v1',
    'Sec-WebSocket-Extensions': OFFER,
    Authorization: basic(deviceId, secret),
  });
}

/** A registered device's secret (PUT /v1/devices/:id). */
async function register(hub: TestHub, deviceId: string): Promise<string> {
  const res = await hub.api('PUT', `/v1/devices/${deviceId}`);
  expect(res.status).toBe(201);
  return res.body.secret as string;
}

describe('permessage-deflate', () => {
  let deflating: TestHub;
  let plain: TestHub;
  beforeAll(async () => {
    [deflating, plain] = await Promise.all([startHub({ PULSEWIRE_PERMESSAGE_DEFLATE: 'true' }), startHub()]);
  });
  afterAll(async () => {
    await deflating?.close();
    await plain?.close();
  });

  it('PULSEWIRE_PERMESSAGE_DEFLATE=true: negotiated, a compressed TELEMETRY is read, a large COMMAND goes out compressed', async () => {
    const ws = await connectRaw(deflating, 'deflate-1', await register(deflating, 'deflate-1'));
    try {
      expect(ws.status).toBe(101);
      expect(ws.headers['sec-websocket-protocol']).toBe('pulsewire.v1');
      expect(ws.headers['sec-websocket-extensions']).toMatch(/^permessage-deflate(;|$)/);
      expect(ws.headers['sec-websocket-extensions']).toContain('server_no_context_takeover');

      const tS = Math.floor(Date.now() / 1000) - 30;
      const telemetry = encodeTelemetry(9, [senmlRecord({ n: 'squeezed', v: 42.5, t: tS })]);
      ws.sendBinary(deflateMessage(telemetry), true);
      const ack = await ws.nextDataFrame();
      expect(ack.rsv1).toBe(false); // a few bytes: below the threshold, sent plain
      expect(decodeHubFrame(new Uint8Array(ack.payload))).toEqual({ type: 2, seq: 9 });
      const rows = await deflating.db.query(`SELECT "value" FROM "telemetry" WHERE "device" = 'deflate-1'`);
      expect(rows.map((r) => [r.time, r['value']])).toEqual([[tS * 1e6, 42.5]]);

      const created = await deflating.api('POST', '/v1/devices/deflate-1/commands', { name: 'pattern', args: BIG_ARGS });
      expect(created.status).toBe(202);
      const expected = Buffer.from(encodeCommand(created.body.id, 'pattern', BIG_ARGS));
      const frame = await ws.nextDataFrame();
      expect({ fin: frame.fin, rsv1: frame.rsv1, opcode: frame.opcode }).toEqual({ fin: true, rsv1: true, opcode: 2 });
      expect(frame.payload.length).toBeLessThan(expected.length / 4);
      expect(inflateMessage(frame.payload).equals(expected)).toBe(true);
    } finally {
      ws.close();
    }
  });

  it('measures PULSEWIRE_MAX_MESSAGE_BYTES on the inflated message: a small frame that inflates past it closes with 1009', async () => {
    const ws = await connectRaw(deflating, 'deflate-3', await register(deflating, 'deflate-3'));
    try {
      const inflated = encodeTelemetry(1, [senmlRecord({ n: 'bomb', vs: 'a'.repeat(70_000), t: Math.floor(Date.now() / 1000) })]);
      expect(inflated.length).toBeGreaterThan(deflating.config.maxMessageBytes);
      const compressed = deflateMessage(inflated);
      expect(compressed.length).toBeLessThan(1024);
      ws.sendBinary(compressed, true);
      const close = await ws.nextFrame((f) => f.opcode === 0x8);
      expect(close.payload.readUInt16BE(0)).toBe(1009);
    } finally {
      ws.close();
    }
  });

  it('by default: the same offer is declined and the same COMMAND goes out plain', async () => {
    const ws = await connectRaw(plain, 'deflate-2', await register(plain, 'deflate-2'));
    try {
      expect(ws.status).toBe(101);
      expect(ws.headers['sec-websocket-extensions']).toBeUndefined();
      const created = await plain.api('POST', '/v1/devices/deflate-2/commands', { name: 'pattern', args: BIG_ARGS });
      const frame = await ws.nextDataFrame();
      expect({ fin: frame.fin, rsv1: frame.rsv1, opcode: frame.opcode }).toEqual({ fin: true, rsv1: false, opcode: 2 });
      expect(frame.payload.equals(Buffer.from(encodeCommand(created.body.id, 'pattern', BIG_ARGS)))).toBe(true);
    } finally {
      ws.close();
    }
  });
});
