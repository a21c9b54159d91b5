/**
 * A header flood inside the byte limit: a device upgrade with more header
 * lines than Node keeps (its http server drops those past maxHeadersCount,
 * 2,000), the Upgrade and credentials after them. That is the shape of ws's
 * GHSA-3h5v-q93c-6h6q (the Upgrade header unreadable, a crash before 8.17.1).
 * The hub must answer it with an HTTP refusal, not a 101 and not a crash,
 * and go on serving (it answers 400: among the lines Node dropped is the
 * subprotocol offer, the first thing the handshake checks); the same headers in the usual order still upgrade, so
 * what is refused is the flood's shape, not the count alone.
 *
 * A head past PULSEWIRE_MAX_HEADER_BYTES (431) is test/server/http-limits.test.ts's.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHub, type TestHub } from '../support/hub.js';
import { basic } from '../support/http-device.js';
import { expectHubServes } from './attack-helpers.js';

const FLOOD = 2_100;

/** Writes `head` on a bare socket; resolves with the answer's head once it is complete, or what came before the hub closed. */
function rawRequest(port: number, head: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    const done = () => { socket.destroy(); resolve(text); };
    socket.on('data', (chunk) => {
      text += chunk.toString('latin1');
      if (text.includes('\r\n\r\n')) done();
    });
    socket.on('error', () => undefined);
    socket.on('close', done);
    socket.setTimeout(30_000, () => reject(new Error('no answer to the header flood')));
    socket.write(head);
  });
}

const filler = (n: number) => Array.from({ length: n }, (_, i) => `x${i}: a\r\n`).join('');

function upgradeHead(deviceId: string, before: string, after = ''): string {
  return `GET /v1/device HTTP/1.1\r\nHost: 127.0.0.1\r\n${before}` +
    'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n' +
    `Sec-WebSocket-Key: ${Buffer.from('0123456789abcdef').toString('base64')}\r\n` +
    `Sec-WebSocket-Protocol: pulsewire.v1\r\nAuthorization: ${basic(deviceId)}\r\n${after}\r\n`;
}

describe('a header flood within the byte limit', () => {
  let hub: TestHub;
  let port: number;
  beforeAll(async () => {
    // Room for the flood's 2,100 short lines (about 16 KiB) below the byte limit.
    hub = await startHub({ PULSEWIRE_MAX_HEADER_BYTES: '65536' });
    port = Number(new URL(hub.baseUrl).port);
  });
  afterAll(async () => { await hub?.close(); });

  it(`${FLOOD} header lines before Upgrade and the credentials: an HTTP refusal, no upgrade, and the hub serves others`, async () => {
    const answer = await rawRequest(port, upgradeHead('flood-1', filler(FLOOD)));
    // Node kept the first 2,000 lines: the subprotocol offer is among those dropped, and the hub says what it misses.
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).toContain('pulsewire.v1');
    expect(answer).not.toContain('101 Switching Protocols');
    await expectHubServes(hub.deviceUrl);
  });

  it('the same lines after Upgrade and the credentials: the device is admitted (the count alone is no attack)', async () => {
    const answer = await rawRequest(port, upgradeHead('flood-2', '', filler(FLOOD)));
    expect(answer).toMatch(/^HTTP\/1\.1 101 /);
  });
});
