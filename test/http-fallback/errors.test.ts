/**
 * HTTP fallback refusals (protocol section 8): each status with a JSON body
 * `{"error":{"code","message"}}` that says why, against a real hub.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeCbor, encodeTelemetry, senmlRecord } from '../../src/protocol/index.js';
import { TestDevice, type Refusal } from '../support/device-client.js';
import { startHub, type TestHub } from '../support/hub.js';
import { basic, batch, HttpDevice } from '../support/http-device.js';

const reading = (seq: number) => encodeTelemetry(seq, [senmlRecord({ n: 'x', v: seq })]);

describe('HTTP fallback: errors', () => {
  let hub: TestHub;
  beforeAll(async () => {
    hub = await startHub({ PULSEWIRE_MAX_MESSAGE_BYTES: '1024', PULSEWIRE_AUTH_MAX_FAILURES: '3', PULSEWIRE_HTTP_DEVICE_RATE: '1' });
  });
  afterAll(async () => { await hub?.close(); });

  it('400: not a CBOR array of known device messages, with the reason', async () => {
    const device = new HttpDevice(hub.baseUrl, 'err-400');
    const cases: [Uint8Array, string, RegExp][] = [
      [new Uint8Array([0xff, 0x00]), 'PW_ERR_CBOR_MALFORMED', /well-formed/],
      [encodeCbor({ a: 1 }), 'PW_ERR_MESSAGE_SHAPE', /body must be a CBOR array/],
      [batch(encodeCbor([9, 1])), 'PW_ERR_MESSAGE_TYPE', /message 0: unknown message type 9/],
      [batch(reading(1), encodeCbor([3, 'c-1', 'x', null])), 'PW_ERR_MESSAGE_DIRECTION', /message 1: .*sent by the hub/],
      // A bare SenML pack is WebSocket-only; in a batch it is not a message.
      [batch(encodeCbor([new Map<number, unknown>([[0, 'x'], [2, 1]])])), 'PW_ERR_MESSAGE_SHAPE', /message 0/],
    ];
    for (const [body, code, reason] of cases) {
      const answer = await device.post(body);
      expect(answer.status, code).toBe(400);
      expect(answer.json.error.code).toBe(code);
      expect(answer.json.error.message).toMatch(reason);
    }
    const badWait = await device.poll(61);
    expect(badWait.status).toBe(400);
    expect(badWait.json.error).toMatchObject({ code: 'PW_ERR_BAD_REQUEST' });
    expect(badWait.json.error.message).toMatch(/wait.*60/);
  });

  it('401 with the Basic challenge; after too many failures 429 for the address, as on the WebSocket path', async () => {
    const wrong = new HttpDevice(hub.baseUrl, 'err-401', 'not-the-secret');
    const missing = await fetch(`${hub.baseUrl}/v1/device/messages`);
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toBe('Basic realm="pulsewire"');
    expect(((await missing.json()) as any).error).toMatchObject({ code: 'PW_ERR_DEVICE_AUTH', message: 'unknown device or wrong secret' });
    for (let i = 0; i < 3; i++) expect((await wrong.post(batch(reading(1)))).status).toBe(401);
    const blocked = await new HttpDevice(hub.baseUrl, 'err-401b').poll();
    expect(blocked.status).toBe(429);
    expect(blocked.json.error.code).toBe('PW_ERR_AUTH_RATE_LIMITED');
    // Seconds left of the default 60 s block: 60 at once, less on a slow machine, never 0 or more.
    expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(Number(blocked.headers.get('retry-after'))).toBeLessThanOrEqual(60);
    // The same limiter guards the WebSocket handshake: HTTP failures count there too.
    const refusal = await TestDevice.connect(hub.deviceUrl, { id: 'err-401b' }).then(() => undefined, (r: Refusal) => r);
    expect(refusal?.status).toBe(429);
  });
});

describe('HTTP fallback: size, media type and rate', () => {
  let hub: TestHub;
  beforeAll(async () => {
    hub = await startHub({ PULSEWIRE_MAX_MESSAGE_BYTES: '1024', PULSEWIRE_HTTP_DEVICE_RATE: '1' });
  });
  afterAll(async () => { await hub?.close(); });

  it('413 for a body over PULSEWIRE_MAX_MESSAGE_BYTES and for more than 32 TELEMETRY in one request', async () => {
    const device = new HttpDevice(hub.baseUrl, 'err-413');
    const big = await device.post(batch(encodeTelemetry(1, [senmlRecord({ n: 'x', vs: 'y'.repeat(1000) })]), encodeTelemetry(2, [senmlRecord({ n: 'x', vs: 'z'.repeat(500) })])));
    expect(big.status).toBe(413);
    expect(big.json.error).toMatchObject({ code: 'PW_ERR_FRAME_TOO_BIG' });
    expect(big.json.error.message).toMatch(/at most 1024 bytes/);
    const many = await device.post(batch(...Array.from({ length: 33 }, (_, i) => encodeCbor([1, i, []]))));
    expect(many.status).toBe(413);
    expect(many.json.error.code).toBe('PW_ERR_BATCH_TOO_BIG');
  });

  it('415 for anything but application/cbor, naming what to send', async () => {
    const device = new HttpDevice(hub.baseUrl, 'err-415');
    const json = await device.post(new TextEncoder().encode('[[1,1,[]]]'), { 'content-type': 'application/json' });
    expect(json.status).toBe(415);
    expect(json.json.error.code).toBe('PW_ERR_MEDIA_TYPE');
    expect(json.json.error.message).toMatch(/application\/cbor/);
    const none = await fetch(device.url, { method: 'POST', headers: { authorization: basic('err-415') } });
    expect(none.status).toBe(415);
    expect(((await none.json()) as any).error.code).toBe('PW_ERR_MEDIA_TYPE');
  });

  it('429 with Retry-After past the per-device request rate, other devices unaffected', async () => {
    // The bucket (1 request/s, a burst of 10) refills while the polls run, and how long they take is
    // the machine's business: so poll until the first 429 and check the count against the time taken.
    const device = new HttpDevice(hub.baseUrl, 'err-429');
    const started = performance.now();
    let passed = 0;
    let limited: Awaited<ReturnType<HttpDevice['poll']>> | undefined;
    while (!limited && passed < 100) {
      const answer = await device.poll();
      if (answer.status === 200) passed++;
      else limited = answer;
    }
    const elapsedS = (performance.now() - started) / 1000;
    // The burst always passes; past it, at most one more per second that went by.
    expect(passed).toBeGreaterThanOrEqual(10);
    expect(passed).toBeLessThanOrEqual(10 + Math.ceil(elapsedS));
    expect(limited?.status).toBe(429);
    expect(limited!.json.error).toMatchObject({ code: 'PW_ERR_RATE_LIMITED' });
    expect(limited!.json.error.message).toMatch(/PULSEWIRE_HTTP_DEVICE_RATE/);
    // The wait for the next token: under a second at 1/s, rounded up to whole seconds.
    expect(Number(limited!.headers.get('retry-after'))).toBe(1);
    expect((await new HttpDevice(hub.baseUrl, 'err-429-other').poll()).status).toBe(200);
  });
});
