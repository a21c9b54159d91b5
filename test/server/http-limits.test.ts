import net from 'node:net';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestPki } from '../support/certs.js';
import { TestDevice, type Refusal } from '../support/device-client.js';
import { OPERATOR_TOKEN, startHub, type TestHub } from '../support/hub.js';
import { sleep } from '../support/wait.js';

/** What came back on a raw socket until the hub closed it, and when the close came (ms after connect). */
type Outcome = { text: string; closedAfterMs: number };

/** Sends `head` one byte per `everyMs`, never finishing; resolves when the hub closes the socket. */
function slowloris(port: number, head: string, everyMs: number): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const started = Date.now();
    let text = '';
    let sent = 0;
    const timer = setInterval(() => { if (sent < head.length) socket.write(head[sent++]!); }, everyMs);
    socket.on('data', (chunk) => { text += chunk.toString('latin1'); });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearInterval(timer);
      resolve({ text, closedAfterMs: Date.now() - started });
    });
    socket.setTimeout(30_000, () => reject(new Error('the hub never cut the slow client')));
  });
}

async function metric(hub: TestHub, line: RegExp): Promise<string | undefined> {
  const { text } = await hub.app.metricsText();
  return text.split('\n').find((l) => line.test(l));
}

describe('request heads: handshake timeout and header size', () => {
  const TIMEOUT_MS = 1000;
  let hub: TestHub;
  let port: number;
  beforeAll(async () => {
    hub = await startHub({ PULSEWIRE_HANDSHAKE_TIMEOUT_MS: String(TIMEOUT_MS), PULSEWIRE_REQUEST_TIMEOUT_MS: '2000', PULSEWIRE_MAX_HEADER_BYTES: '2048' });
    port = Number(new URL(hub.baseUrl).port);
  });
  afterAll(async () => { await hub?.close(); });

  it('cuts a client that sends its upgrade headers one byte a second (slowloris) with 408, not before the timeout', async () => {
    const head = 'GET /v1/device HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n';
    const outcome = await slowloris(port, head, 1000);
    expect(outcome.text).toMatch(/^HTTP\/1\.1 408 /);
    expect(outcome.text).toContain('PULSEWIRE_HANDSHAKE_TIMEOUT_MS');
    expect(outcome.closedAfterMs).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
    // An idle connection that never sends a byte goes the same way.
    const idle = await slowloris(port, '', 1000);
    expect(idle.text).toMatch(/^HTTP\/1\.1 408 /);
    expect(await metric(hub, /^pulsewire_http_client_errors_total\{reason="timeout"\}/)).toMatch(/ [2-9]\d*$/);
  });

  it('cuts a request whose body trickles in past PULSEWIRE_REQUEST_TIMEOUT_MS', async () => {
    // An operator route, authorised, so the hub does read the body (a device request without credentials is answered 401 first).
    const head = 'POST /v1/devices/some-1/commands HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ' + OPERATOR_TOKEN +
      '\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"name":"';
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    const started = Date.now();
    socket.write(head);
    let text = '';
    socket.on('data', (chunk) => { text += chunk.toString('latin1'); });
    const timer = setInterval(() => socket.write('a'), 200);
    await new Promise((resolve) => socket.on('close', resolve));
    clearInterval(timer);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2000 - 50);
    expect(text).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('leaves an upgraded device connection alone long past both timeouts', async () => {
    const device = await TestDevice.connect(hub.deviceUrl, { id: 'slow-ok-1' });
    await sleep(3 * 2000);
    expect(device.socket.readyState).toBe(device.socket.OPEN);
    await device.close();
  });

  it('answers a request head over PULSEWIRE_MAX_HEADER_BYTES with 431, and a normal handshake still works', async () => {
    const refused = await TestDevice.connect(hub.deviceUrl, { id: 'big-1', headers: { 'x-padding': 'a'.repeat(4096) } }).then(
      (device) => { device.socket.terminate(); throw new Error('upgraded despite the header size'); },
      (err: Refusal) => err,
    );
    expect(refused.status).toBe(431);
    expect(refused.body).toContain('PULSEWIRE_MAX_HEADER_BYTES');
    expect(await metric(hub, /^pulsewire_http_client_errors_total\{reason="header-too-big"\}/)).toMatch(/ 1$/);
    const device = await TestDevice.connect(hub.deviceUrl, { id: 'big-2', headers: { 'x-padding': 'a'.repeat(512) } });
    await device.close();
  });
});

describe('with TLS, the TLS handshake has the same bound', () => {
  let hub: TestHub;
  beforeAll(async () => {
    const pki = makeTestPki();
    hub = await startHub({ PULSEWIRE_TLS_CERT: pki.files.serverCert, PULSEWIRE_TLS_KEY: pki.files.serverKey, PULSEWIRE_HANDSHAKE_TIMEOUT_MS: '1000' });
  });
  afterAll(async () => { await hub?.close(); });

  it('cuts a client that opens TCP and never starts TLS, and counts it', async () => {
    const port = Number(new URL(hub.baseUrl).port);
    const outcome = await slowloris(port, '', 1000);
    expect(outcome.text).toBe('');
    expect(outcome.closedAfterMs).toBeGreaterThanOrEqual(1000 - 50);
    expect(await metric(hub, /^pulsewire_http_client_errors_total\{reason="tls-timeout"\}/)).toMatch(/ 1$/);
    // A client that does finish TLS is served.
    const socket = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false });
    await new Promise((resolve, reject) => { socket.once('secureConnect', resolve); socket.once('error', reject); });
    socket.destroy();
  });
});
