/**
 * The HTTP fallback (protocol section 8) against a real hub and the suite's
 * influxd: TELEMETRY, RESULT and REPORTED up by POST with the WebSocket
 * path's ACK semantics; COMMAND and DESIRED down in POST answers and long polls.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeviceSession } from '../../src/gateway/device-session.js';
import { encodeReported, encodeResult, encodeTelemetry, senmlRecord } from '../../src/protocol/index.js';
import type { CommandMessage } from '../../src/protocol/messages.js';
import { TestDevice } from '../support/device-client.js';
import { startHub, type TestHub } from '../support/hub.js';
import { batch, HttpDevice } from '../support/http-device.js';
import { sleep, until } from '../support/wait.js';

const VECTOR_TELEMETRY = '83010782a5006474656d70016343656c02fb4037800000000000216664657634322f221a69248100a4006368756d01632552480218290601';
const VECTOR_TIME_S = 1_764_000_000;
const hexBytes = (hex: string) => new Uint8Array(Buffer.from(hex, 'hex'));
// Relative times (below 2^28 s): one point per seq, even with the hub's clock pinned.
const reading = (seq: number, value: number) => encodeTelemetry(seq, [senmlRecord({ n: 'temp', v: value, t: -seq })]);

describe('HTTP fallback: messages', () => {
  let hub: TestHub;
  beforeAll(async () => {
    hub = await startHub({}, { nowUs: () => (VECTOR_TIME_S + 60) * 1_000_000 });
  });
  afterAll(async () => { await hub?.close(); });

  const command = async (id: string, name = 'set_interval', args: unknown = { seconds: 30 }) => {
    const created = await hub.api('POST', `/v1/devices/${id}/commands`, { name, args });
    expect(created.status).toBe(202);
    return created.body.id as string;
  };
  const commandStatus = async (id: string, commandId: string) =>
    (await hub.api('GET', `/v1/devices/${id}/commands/${commandId}`)).body.status as string;
  /** Resolves once the hub holds a long poll of `id` open: the request arrived, it is not just sent. */
  const pollOpen = (id: string) => until(() => {
    const link = hub.app.gateway.runtimes.peek(id)?.session as { hasPoll?: boolean } | undefined;
    return link?.hasPoll === true ? true : undefined;
  });

  it('POST TELEMETRY: the ACKs in order, byte for byte, and the readings in InfluxDB', async () => {
    const device = new HttpDevice(hub.baseUrl, 'http-tel');
    const answer = await device.post(batch(hexBytes(VECTOR_TELEMETRY), reading(8, 1.5), reading(9, 2.5)));
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toBe('application/cbor');
    // [[2,7],[2,8],[2,9]]: each element is the WebSocket ACK frame for that seq.
    expect(answer.hex).toBe('83820207820208820209');
    const rows = await hub.db.query(`SELECT count("value") AS n FROM telemetry WHERE device = 'http-tel'`);
    expect(Number(rows[0]!.n)).toBe(4);
  });

  it('a resend is ACKed with code 1 and not stored twice, also across transports', async () => {
    const device = new HttpDevice(hub.baseUrl, 'http-dup');
    expect((await device.post(batch(reading(1, 10)))).hex).toBe('81820201');
    expect((await device.post(batch(reading(1, 10)))).hex).toBe('8183020101');
    // Sent first over a WebSocket, resent over HTTP after falling back: still one copy.
    const ws = await TestDevice.connect(hub.deviceUrl, { id: 'http-dup' });
    ws.send(reading(2, 20));
    expect(await ws.next()).toEqual({ type: 2, seq: 2 });
    await ws.close();
    expect((await device.post(batch(reading(2, 20)))).messages).toEqual([{ type: 2, seq: 2, code: 1 }]);
    const rows = await hub.db.query(`SELECT count("value") AS n FROM telemetry WHERE device = 'http-dup'`);
    expect(Number(rows[0]!.n)).toBe(2);
  });

  it('a bad pack gets its ACK code like on a WebSocket; the rest of the batch is stored', async () => {
    const device = new HttpDevice(hub.baseUrl, 'http-badpack');
    const answer = await device.post(batch(encodeTelemetry(1, [senmlRecord({ n: 'ok', v: 1 })]), encodeTelemetry(2, [new Map([[0, 'x']])])));
    expect(answer.messages[0]).toEqual({ type: 2, seq: 1 });
    expect(answer.messages[1]).toMatchObject({ type: 2, seq: 2, code: 2 });
    expect((answer.messages[1] as { reason?: string }).reason).toMatch(/record 0/);
  });

  it('POST answers with what waits: DESIRED first, then commands; they are sent once the answer was written', async () => {
    const id = 'http-post-down';
    await hub.api('PUT', `/v1/devices/${id}`);
    expect((await hub.api('PATCH', `/v1/devices/${id}/desired`, { interval: 30 })).status).toBe(200);
    const first = await command(id);
    const second = await command(id, 'set_led', { on: true });
    expect(await commandStatus(id, first)).toBe('queued');
    const device = new HttpDevice(hub.baseUrl, id, (await hub.api('PUT', `/v1/devices/${id}`)).body.secret);
    const answer = await device.post(batch(reading(1, 1)));
    expect(answer.messages.map((m) => m.type)).toEqual([2, 6, 3, 3]);
    expect(answer.messages[1]).toEqual({ type: 6, version: 1, state: new Map([['interval', 30]]) });
    expect((answer.messages[2] as CommandMessage).commandId).toBe(first);
    expect((answer.messages[3] as CommandMessage).commandId).toBe(second);
    await until(async () => ((await commandStatus(id, second)) === 'sent' ? true : undefined));
    // Nothing waits any more: the next answer carries the ACK only (DESIRED went to this presence already).
    expect((await device.post(batch(reading(2, 2)))).messages).toEqual([{ type: 2, seq: 2 }]);
  });

  it('RESULT by POST completes a command; REPORTED merges into the reported state', async () => {
    const id = 'http-result';
    const device = new HttpDevice(hub.baseUrl, id);
    expect((await device.poll()).status).toBe(200); // registers the device (enrollment)
    const commandId = await command(id);
    const polled = await device.poll(5);
    expect(polled.messages).toMatchObject([{ type: 3, commandId, name: 'set_interval' }]);
    const answer = await device.post(batch(encodeResult(commandId, 1, new Map([['ok', true]])), encodeReported({ fw: '1.2.0', interval: 30 })));
    expect(answer.status).toBe(200);
    expect(answer.messages).toEqual([]);
    const done = await hub.api('GET', `/v1/devices/${id}/commands/${commandId}?wait=5`);
    expect(done.body).toMatchObject({ status: 'succeeded', result: { ok: true } });
    await device.post(batch(encodeReported({ fw: null, led: true })));
    const state = await hub.api('GET', `/v1/devices/${id}/state`);
    expect(state.body.reported).toEqual({ interval: 30, led: true });
  });

  it('long poll: answers at once with a queued command and marks it sent', async () => {
    const id = 'http-poll-now';
    const device = new HttpDevice(hub.baseUrl, id);
    await device.poll();
    const commandId = await command(id);
    const started = Date.now();
    const answer = await device.poll(60);
    // Not after its wait: a minute, against the few milliseconds an answer takes (seconds on a busy machine).
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(answer.messages).toMatchObject([{ type: 3, commandId }]);
    await until(async () => ((await commandStatus(id, commandId)) === 'sent' ? true : undefined));
  });

  it('long poll: answers when a command is created during the wait', async () => {
    const id = 'http-poll-wait';
    const device = new HttpDevice(hub.baseUrl, id);
    await device.poll();
    const polling = device.poll(30);
    await pollOpen(id);
    const commandId = await command(id);
    const answer = await polling;
    expect(answer.messages).toMatchObject([{ type: 3, commandId, name: 'set_interval' }]);
    await until(async () => ((await commandStatus(id, commandId)) === 'sent' ? true : undefined));
  });

  it('long poll: an empty array when the wait ends; a second poll releases the first', async () => {
    const device = new HttpDevice(hub.baseUrl, 'http-poll-empty');
    const started = Date.now();
    const answer = await device.poll(1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(answer.status).toBe(200);
    expect(answer.hex).toBe('80');
    const older = device.poll(30);
    await pollOpen('http-poll-empty');
    const newer = device.poll(1);
    expect((await older).hex).toBe('80');
    expect((await newer).hex).toBe('80');
  });

  it('DESIRED is the first message of a poll and again after each change', async () => {
    const id = 'http-desired';
    await hub.api('PUT', `/v1/devices/${id}`);
    await hub.api('PATCH', `/v1/devices/${id}/desired`, { interval: 10 });
    const commandId = await command(id);
    const device = new HttpDevice(hub.baseUrl, id, (await hub.api('PUT', `/v1/devices/${id}`)).body.secret);
    const first = await device.poll(5);
    expect(first.messages.map((m) => m.type)).toEqual([6, 3]);
    expect((first.messages[1] as CommandMessage).commandId).toBe(commandId);
    const polling = device.poll(30);
    await pollOpen(id);
    await hub.api('PATCH', `/v1/devices/${id}/desired`, { led: true });
    expect((await polling).messages).toEqual([{ type: 6, version: 2, state: new Map<string, unknown>([['interval', 10], ['led', true]]) }]);
  });

  it('a client that aborts its long poll does not get the command marked sent; the next poll gets it', async () => {
    const id = 'http-abort';
    const device = new HttpDevice(hub.baseUrl, id);
    await device.poll();
    const controller = new AbortController();
    const polling = device.poll(30, controller.signal).catch((err: Error) => err);
    await pollOpen(id);
    controller.abort();
    expect(await polling).toBeInstanceOf(Error);
    // The hub notices the closed connection: the device's link has no poll any more.
    const link = () => hub.app.gateway.runtimes.peek(id)?.session as { hasPoll?: boolean } | undefined;
    await until(() => (link()?.hasPoll === false ? true : undefined));
    const commandId = await command(id);
    await sleep(300); // nothing may happen to it: a pause to let a wrong "sent" show, not a wait for an event
    expect(await commandStatus(id, commandId)).toBe('queued');
    const answer = await device.poll(5);
    expect(answer.messages).toMatchObject([{ type: 3, commandId }]);
    await until(async () => ((await commandStatus(id, commandId)) === 'sent' ? true : undefined));
  });

  it('a device that has a WebSocket open keeps it: its HTTP uploads are served, commands go over the socket', async () => {
    const id = 'http-ws-wins';
    const ws = await TestDevice.connect(hub.deviceUrl, { id });
    const device = new HttpDevice(hub.baseUrl, id);
    expect((await device.post(batch(reading(5, 1)))).messages).toEqual([{ type: 2, seq: 5 }]);
    const commandId = await command(id);
    expect(await ws.next()).toMatchObject({ type: 3, commandId });
    expect(hub.app.gateway.runtimes.peek(id)?.session).toBeInstanceOf(DeviceSession);
    await ws.close();
  });

  it('counts fallback requests in /metrics by method and status', async () => {
    const counts = async () => {
      const metrics = await hub.api('GET', '/metrics');
      expect(metrics.status).toBe(200);
      const count = (pattern: RegExp) => Number(pattern.exec(metrics.body as string)?.[1] ?? 0);
      return {
        post200: count(/^pulsewire_http_device_requests_total\{method="POST",status="200"\} (\d+)$/m),
        get200: count(/^pulsewire_http_device_requests_total\{method="GET",status="200"\} (\d+)$/m),
        results: count(/^pulsewire_messages_in_total\{type="result"\} (\d+)$/m),
      };
    };
    const before = await counts();
    const id = 'http-metrics';
    const device = new HttpDevice(hub.baseUrl, id);
    expect((await device.poll()).status).toBe(200);
    const commandId = await command(id);
    expect((await device.poll()).messages).toMatchObject([{ type: 3, commandId }]);
    expect((await device.post(batch(encodeResult(commandId, 1, null)))).status).toBe(200);
    expect(await counts()).toEqual({ post200: before.post200 + 1, get200: before.get200 + 2, results: before.results + 1 });
  });
});
