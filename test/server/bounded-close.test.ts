/**
 * A client that stops reading a response must not hold the hub's shutdown:
 * server.close() waits for every response to finish, and the spool is closed
 * only after it (src/server/bounded-close.ts). Without the cut, close() here
 * never returns; with it, it returns after the grace (shutdown timeout / 4).
 */
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { startHub } from '../support/hub.js';

describe('closing the hub while a client does not read its response', () => {
  it('cuts that connection after the grace, and close() returns', async () => {
    const hub = await startHub({ PULSEWIRE_SHUTDOWN_TIMEOUT_MS: '2000' });
    const { hostname, port } = new URL(hub.baseUrl);
    const html = await (await fetch(`${hub.baseUrl}/`)).text();
    // The dashboard's source map: several hundred KiB, more than the loopback buffers hold unread.
    const map = `${/<script[^>]+src="([^"]+)"/.exec(html)![1]!}.map`;
    const head = await fetch(`${hub.baseUrl}${map}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(Number(head.headers.get('content-length'))).toBeGreaterThan(256 * 1024);

    const stalled = net.connect(Number(port), hostname);
    await new Promise<void>((resolve, reject) => { stalled.once('connect', resolve); stalled.once('error', reject); });
    stalled.write(`GET ${map} HTTP/1.1\r\nHost: ${hostname}\r\n\r\n`);
    // Read the first chunk (the response has started), then stop reading for good.
    await new Promise<void>((resolve) => stalled.once('data', () => { stalled.pause(); resolve(); }));
    const cut = new Promise<void>((resolve) => stalled.once('close', () => resolve()));
    stalled.on('error', () => {});

    const outcome = await Promise.race([
      hub.close().then(() => 'closed' as const),
      new Promise<'still waiting'>((resolve) => setTimeout(() => resolve('still waiting'), 60_000).unref()),
    ]);
    expect(outcome).toBe('closed');
    // A paused socket does not read, so it learns of the cut only once it reads again.
    stalled.resume();
    await cut;
    expect(stalled.destroyed).toBe(true);
  }, 90_000);
});
