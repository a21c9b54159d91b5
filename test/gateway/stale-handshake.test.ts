/**
 * Protocol 2: of two connections of one device, the older is closed with
 * 4000. "Older" is the one the hub accepted first, not the one whose upgrade
 * it happened to finish last: under load a handshake can wait in the hub
 * while the device gives up on it and connects again. When the stale one is
 * finally processed it must not throw out the device's live connection.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeTelemetry, senmlRecord } from '../../src/protocol/index.js';
import { enrollmentSecret, TestDevice } from '../support/device-client.js';
import { startHub, type TestHub } from '../support/hub.js';
import { sleep, waitFor } from '../support/wait.js';

describe('a stale handshake', () => {
  let hub: TestHub;
  beforeAll(async () => { hub = await startHub(); });
  afterAll(async () => { await hub?.close(); });

  it('finished after the device reconnected is closed with 4000 and leaves the live connection alone', async () => {
    const id = 'stale-1';
    const url = new URL(hub.deviceUrl);
    // The first attempt: its TCP connection is accepted now, its upgrade request comes later.
    const stale = net.connect(Number(url.port), url.hostname);
    await new Promise<void>((resolve) => stale.once('connect', () => resolve()));
    await sleep(100);
    const received: Buffer[] = [];
    stale.on('data', (chunk: Buffer) => received.push(chunk));

    const live = await TestDevice.connect(hub.deviceUrl, { id });
    let liveClosed = false;
    void live.closed.then(() => { liveClosed = true; });

    const auth = Buffer.from(`${id}:${enrollmentSecret(id)}`).toString('base64');
    stale.write([
      `GET ${url.pathname} HTTP/1.1`, `Host: ${url.host}`, 'Upgrade: websocket', 'Connection: Upgrade',
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Protocol: pulsewire.v1',
      `Authorization: Basic ${auth}`, '', '',
    ].join('\r\n'));
    // ws then waits for the client's close frame, which this raw socket never sends: read what came.
    const closeFrameSeen = () => { const b = Buffer.concat(received); const at = b.indexOf('\r\n\r\n'); return at >= 0 && b.length >= at + 8; };
    await waitFor(closeFrameSeen, { what: 'a close frame on the stale connection', timeoutMs: 10_000 });
    stale.destroy();

    const bytes = Buffer.concat(received);
    expect(bytes.toString('latin1')).toMatch(/^HTTP\/1\.1 101 /);
    // The close frame the stale connection got: opcode 8, code 4000.
    const frame = bytes.subarray(bytes.indexOf('\r\n\r\n') + 4);
    expect(frame[0]).toBe(0x88);
    expect(frame.readUInt16BE(2)).toBe(4000);

    await sleep(200);
    expect(liveClosed).toBe(false);
    live.send(encodeTelemetry(1, [senmlRecord({ n: 'temp', v: 21 })]));
    expect(await live.next()).toEqual({ type: 2, seq: 1 });
    const device = await hub.api('GET', `/v1/devices/${id}`);
    expect(device.body).toMatchObject({ online: true });
    await live.close();
  });

  it('still lets a newer connection replace an older live one with 4000', async () => {
    const first = await TestDevice.connect(hub.deviceUrl, { id: 'stale-2' });
    const second = await TestDevice.connect(hub.deviceUrl, { id: 'stale-2' });
    expect((await first.closed).code).toBe(4000);
    second.send(encodeTelemetry(1, [senmlRecord({ n: 'temp', v: 21 })]));
    expect(await second.next()).toEqual({ type: 2, seq: 1 });
    await second.close();
  });
});
