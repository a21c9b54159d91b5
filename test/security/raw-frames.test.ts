/**
 * RFC 6455 broken on purpose, on a bare TCP socket, after a valid device
 * handshake: what a library client will not send. ws's receiver
 * (node_modules/ws/lib/receiver.js) refuses each with its close code — 1002
 * for a framing error, 1007 for invalid UTF-8, 1009 for a length past the
 * limit, 1008 for ws's cap of 16,384 fragments per message — and the hub's
 * own session answers what ws lets through (a text frame: 1003). After each
 * attack the hub must still serve another device, and the attacker's device
 * must not be left listed online.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeTelemetry } from '../../src/protocol/encode.js';
import { senmlRecord } from '../../src/protocol/senml-labels.js';
import { startHub, type TestHub } from '../support/hub.js';
import { sleep } from '../support/wait.js';
import { closePayload, Opcode, rawFrame, type FrameSpec, type RawWebSocket } from '../support/raw-websocket.js';
import { connectRawDevice, expectHubServes, oneReading } from './attack-helpers.js';

const PROTOCOL_ERROR = 1002;
const INVALID_PAYLOAD = 1007;
const POLICY = 1008;
const TOO_BIG = 1009;

/** Invalid UTF-8: a lone continuation byte, an overlong '/', a surrogate half. */
const BAD_UTF8 = [Buffer.from([0x80]), Buffer.from([0xc0, 0xaf]), Buffer.from([0xed, 0xa0, 0x80])];

type Attack = { name: string; frames: FrameSpec[]; close: number };

const attacks: Attack[] = [
  { name: 'RSV2 set on a binary frame', frames: [{ opcode: Opcode.BINARY, payload: oneReading(1), rsv: 0x20 }], close: PROTOCOL_ERROR },
  { name: 'RSV3 set on a binary frame', frames: [{ opcode: Opcode.BINARY, payload: oneReading(1), rsv: 0x10 }], close: PROTOCOL_ERROR },
  { name: 'RSV1 (compressed) without permessage-deflate negotiated', frames: [{ opcode: Opcode.BINARY, payload: oneReading(1), rsv: 0x40 }], close: PROTOCOL_ERROR },
  { name: 'an unmasked client frame', frames: [{ opcode: Opcode.BINARY, payload: oneReading(1), masked: false }], close: PROTOCOL_ERROR },
  { name: 'an unmasked ping', frames: [{ opcode: Opcode.PING, masked: false }], close: PROTOCOL_ERROR },
  { name: 'a ping of 126 bytes (control frames carry at most 125)', frames: [{ opcode: Opcode.PING, payload: Buffer.alloc(126, 1) }], close: PROTOCOL_ERROR },
  { name: 'a pong of 1000 bytes', frames: [{ opcode: Opcode.PONG, payload: Buffer.alloc(1000, 1) }], close: PROTOCOL_ERROR },
  { name: 'a close frame of 126 bytes', frames: [{ opcode: Opcode.CLOSE, payload: closePayload(1000, Buffer.alloc(124, 0x61)) }], close: PROTOCOL_ERROR },
  { name: 'a fragmented ping (FIN clear)', frames: [{ opcode: Opcode.PING, payload: Buffer.from('a'), fin: false }], close: PROTOCOL_ERROR },
  { name: 'a fragmented close (FIN clear)', frames: [{ opcode: Opcode.CLOSE, payload: closePayload(1000), fin: false }], close: PROTOCOL_ERROR },
  { name: 'a ping inside a message, fragmented itself', frames: [{ opcode: Opcode.BINARY, payload: Buffer.from([0x83]), fin: false }, { opcode: Opcode.PING, fin: false }], close: PROTOCOL_ERROR },
  { name: 'reserved data opcode 0x3', frames: [{ opcode: 0x3, payload: oneReading(1) }], close: PROTOCOL_ERROR },
  { name: 'reserved control opcode 0xB', frames: [{ opcode: 0xb }], close: PROTOCOL_ERROR },
  { name: 'a continuation with no message to continue', frames: [{ opcode: Opcode.CONTINUATION, payload: oneReading(1) }], close: PROTOCOL_ERROR },
  { name: 'a new binary frame before the fragmented one ended', frames: [{ opcode: Opcode.BINARY, payload: Buffer.from([0x83]), fin: false }, { opcode: Opcode.BINARY, payload: oneReading(1) }], close: PROTOCOL_ERROR },
  { name: 'RSV1 on a continuation frame', frames: [{ opcode: Opcode.BINARY, payload: Buffer.from([0x83]), fin: false }, { opcode: Opcode.CONTINUATION, payload: Buffer.from([1]), rsv: 0x40 }], close: PROTOCOL_ERROR },
  { name: 'a close frame of one byte (half a code)', frames: [{ opcode: Opcode.CLOSE, payload: Buffer.from([0x03]) }], close: PROTOCOL_ERROR },
  ...[0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535].map((code) => ({
    name: `close code ${code} (not one a peer may send)`, frames: [{ opcode: Opcode.CLOSE, payload: closePayload(code) }], close: PROTOCOL_ERROR,
  })),
  ...BAD_UTF8.map((bytes) => ({
    name: `invalid UTF-8 in a close reason (${bytes.toString('hex')})`, frames: [{ opcode: Opcode.CLOSE, payload: closePayload(1000, Buffer.concat([Buffer.from('bye '), bytes])) }], close: INVALID_PAYLOAD,
  })),
  { name: 'invalid UTF-8 in a text frame', frames: [{ opcode: Opcode.TEXT, payload: BAD_UTF8[0] }], close: INVALID_PAYLOAD },
  { name: 'invalid UTF-8 split over text fragments', frames: [{ opcode: Opcode.TEXT, payload: Buffer.from([0xe2, 0x82]), fin: false }, { opcode: Opcode.CONTINUATION, payload: Buffer.from([0x41]) }], close: INVALID_PAYLOAD },
  // A valid text frame passes ws and meets the hub's own rule: binary CBOR only (protocol section 1).
  { name: 'a valid text frame', frames: [{ opcode: Opcode.TEXT, payload: Buffer.from('{"temp":21}') }], close: 1003 },
  { name: 'a 64-bit length past 2^53', frames: [{ opcode: Opcode.BINARY, announcedLength: 2n ** 60n }], close: TOO_BIG },
  // Refused on the length alone, before the megabyte is sent.
  { name: 'a frame announcing 1 MiB (the limit is 64 KiB)', frames: [{ opcode: Opcode.BINARY, announcedLength: 1n << 20n }], close: TOO_BIG },
  {
    name: 'fragments adding up past the message limit',
    frames: [{ opcode: Opcode.BINARY, payload: Buffer.alloc(40_000, 0x41), fin: false }, { opcode: Opcode.CONTINUATION, payload: Buffer.alloc(40_000, 0x41) }],
    close: TOO_BIG,
  },
];

/** A device's connection after the attack: the close frame the hub sent, then the TCP close once we answer it. */
async function hubCloseCode(ws: RawWebSocket): Promise<number> {
  const close = await ws.nextFrame((f) => f.opcode === Opcode.CLOSE);
  ws.closeAfterHub();
  await ws.ended;
  return close.payload.readUInt16BE(0);
}

describe('malformed WebSocket frames from an authenticated device', () => {
  let hub: TestHub;
  beforeAll(async () => { hub = await startHub(); });
  afterAll(async () => { await hub?.close(); });

  let n = 0;
  it.each(attacks)('$name: closed with $close, and the hub serves others', async ({ frames, close }) => {
    const id = `raw-attacker-${++n}`;
    const ws = await connectRawDevice(hub.baseUrl, id);
    ws.sendBytes(Buffer.concat(frames.map(rawFrame)));
    expect(await hubCloseCode(ws)).toBe(close);
    // The attacker's session ended: its device is not left listed online.
    await expect.poll(async () => (await hub.api('GET', `/v1/devices/${id}`)).body.online).toBe(false);
    await expectHubServes(hub.deviceUrl);
  });

  it('positive controls: the same parser takes a message in 1-byte fragments, pings between them, and valid close codes', async () => {
    const ws = await connectRawDevice(hub.baseUrl, 'raw-control-1');
    const message = encodeTelemetry(7, [senmlRecord({ n: 'frag', v: 1 })]);
    const frames: Buffer[] = [];
    for (let i = 0; i < message.length; i++) {
      frames.push(rawFrame({ opcode: i === 0 ? Opcode.BINARY : Opcode.CONTINUATION, payload: message.subarray(i, i + 1), fin: i === message.length - 1 }));
      if (i === 2) frames.push(rawFrame({ opcode: Opcode.PING, payload: Buffer.from('between') }));
    }
    ws.sendBytes(Buffer.concat(frames));
    const pong = await ws.nextFrame((f) => f.opcode === Opcode.PONG);
    expect(pong.payload.toString()).toBe('between');
    const ack = await ws.nextDataFrame();
    expect(ack.payload.toString('hex')).toBe(Buffer.from([0x82, 0x02, 0x07]).toString('hex'));
    for (const code of [1000, 3000, 4999]) {
      const peer = await connectRawDevice(hub.baseUrl, `raw-control-close-${code}`);
      peer.sendFrame({ opcode: Opcode.CLOSE, payload: closePayload(code, Buffer.from('bye ünïcode')) });
      // The hub completes the closing handshake with the peer's own code.
      expect(await hubCloseCode(peer)).toBe(code);
    }
    ws.close();
  });
});

describe('floods from an authenticated device', () => {
  let hub: TestHub;
  beforeAll(async () => { hub = await startHub(); });
  afterAll(async () => { await hub?.close(); });

  it('a flood of 1-byte fragments is cut at ws\'s 16,384 fragments per message with 1008; the hub serves others', async () => {
    const ws = await connectRawDevice(hub.baseUrl, 'frag-flood');
    const fragments = [rawFrame({ opcode: Opcode.BINARY, payload: Buffer.from([0x83]), fin: false })];
    // 20,000 one-byte fragments are 20 KB of payload: well under the 64 KiB message limit, so the count is what trips.
    for (let i = 0; i < 20_000; i++) fragments.push(rawFrame({ opcode: Opcode.CONTINUATION, payload: Buffer.from([0x01]), fin: false }));
    ws.sendBytes(Buffer.concat(fragments));
    expect(await hubCloseCode(ws)).toBe(POLICY);
    await expectHubServes(hub.deviceUrl);
  });

  it('a flood of empty fragments is cut the same way (they add no bytes, but count)', async () => {
    const ws = await connectRawDevice(hub.baseUrl, 'empty-frag-flood');
    const fragments = [rawFrame({ opcode: Opcode.BINARY, fin: false })];
    for (let i = 0; i < 20_000; i++) fragments.push(rawFrame({ opcode: Opcode.CONTINUATION, fin: false }));
    ws.sendBytes(Buffer.concat(fragments));
    expect(await hubCloseCode(ws)).toBe(POLICY);
    await expectHubServes(hub.deviceUrl);
  });

  it('a ping flood read by its sender, 50 at a time, gets every pong in order, and the device still gets its ACKs', async () => {
    const ws = await connectRawDevice(hub.baseUrl, 'ping-flood-reader');
    const rounds = 100;
    const perRound = 50;
    for (let round = 0; round < rounds; round++) {
      ws.sendBytes(Buffer.concat(Array.from({ length: perRound }, (_, i) => rawFrame({ opcode: Opcode.PING, payload: Buffer.from(`p${round}.${i}`) }))));
      for (let i = 0; i < perRound; i++) expect((await ws.nextFrame((f) => f.opcode === Opcode.PONG)).payload.toString()).toBe(`p${round}.${i}`);
    }
    ws.sendBinary(oneReading(3));
    expect((await ws.nextDataFrame()).payload.toString('hex')).toBe('820203');
    ws.close();
    await expectHubServes(hub.deviceUrl);
  });

  it('more than 60 pings in one burst is terminated (ws: at most 60 pongs waiting to be written); the hub serves others', async () => {
    const ws = await connectRawDevice(hub.baseUrl, 'ping-burst');
    ws.sendBytes(Buffer.concat(Array.from({ length: 200 }, () => rawFrame({ opcode: Opcode.PING }))));
    const ending = await ws.ended;
    expect(ending.closeCode).toBeUndefined();
    expect(ws.frames.filter((f) => f.opcode === Opcode.PONG).length).toBeLessThanOrEqual(60);
    await expect.poll(async () => (await hub.api('GET', '/v1/devices/ping-burst')).body.online).toBe(false);
    await expectHubServes(hub.deviceUrl);
  });

  it('a ping flood whose sender never reads its pongs is terminated once 60 pongs wait unsent, not buffered without end', async () => {
    const ws = await connectRawDevice(hub.baseUrl, 'ping-flood-deaf');
    ws.pauseReading();
    // Small bursts, paced: once the pipe back to this sender is full, pongs wait in the hub and ws stops
    // at 60 of them. (Bursts the hub reads together trip the same cap sooner; either way, nothing piles up.)
    const burst = Buffer.concat(Array.from({ length: 20 }, () => rawFrame({ opcode: Opcode.PING, payload: Buffer.alloc(125, 0x70) })));
    const maxBursts = 50_000; // 130 MB of pings: far more than loopback's socket buffers hold
    let bursts = 0;
    while (!ws.isDestroyed && bursts < maxBursts) {
      if (!ws.sendBytes(burst)) await ws.drained();
      bursts++;
      await sleep(2);
    }
    const ending = await ws.ended;
    // Terminated (TCP dropped), not closed: the pongs it would not read are what filled the pipe.
    expect(ending.closeCode).toBeUndefined();
    expect(bursts).toBeLessThan(maxBursts);
    await expect.poll(async () => (await hub.api('GET', '/v1/devices/ping-flood-deaf')).body.online).toBe(false);
    await expectHubServes(hub.deviceUrl);
  });
});
