/**
 * Protocol 2's "a newer connection of the same device wins", as the hub
 * implements it (src/gateway/takeover.ts): a connection that arrives while
 * its device has a live one replaces it only at its first sign of life (a
 * pong or any frame). Under a reconnect storm the hub can accept a device's
 * abandoned connection attempt after its live connection (SYN backlog
 * overflow, the handshake completed later on a retransmission); that one
 * carries a valid upgrade request but nobody answers on it, and it must not
 * throw the live connection out.
 */
import net from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MAX_WAITING_PER_DEVICE, Takeovers, confirmBoundMs, type TakeoverCandidate, type TakeoverOutcome } from '../../src/gateway/takeover.js';
import { encodeTelemetry, senmlRecord } from '../../src/protocol/index.js';
import { enrollmentSecret, TestDevice } from '../support/device-client.js';
import { startHub, type TestHub } from '../support/hub.js';
import { sleep, waitFor } from '../support/wait.js';

let hub: TestHub | undefined;
afterEach(async () => { await hub?.close(); hub = undefined; });

const telemetry = (seq: number) => encodeTelemetry(seq, [senmlRecord({ n: 'temp', v: 20 + seq })]);

/** Records when a connection was closed, so tests can say it was not (yet). */
function watchClose(device: TestDevice): { readonly code: number | undefined; readonly reason: string | undefined } {
  const seen: { code: number | undefined; reason: string | undefined } = { code: undefined, reason: undefined };
  void device.closed.then((c) => { seen.code = c.code; seen.reason = c.reason; });
  return seen;
}

/** A client that gave up: a valid upgrade request for `id`, then its end of the TCP connection goes. */
async function abandonedUpgrade(h: TestHub, id: string, how: 'half-close' | 'destroy'): Promise<void> {
  const url = new URL(h.deviceUrl);
  const raw = net.connect(Number(url.port), url.hostname);
  await new Promise<void>((resolve) => raw.once('connect', () => resolve()));
  raw.on('error', () => {}); // the hub's answer may meet a reset
  const auth = Buffer.from(`${id}:${enrollmentSecret(id)}`).toString('base64');
  const request = [
    `GET ${url.pathname} HTTP/1.1`, `Host: ${url.host}`, 'Upgrade: websocket', 'Connection: Upgrade',
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Protocol: pulsewire.v1',
    `Authorization: Basic ${auth}`, '', '',
  ].join('\r\n');
  const answered = new Promise<string>((resolve) => {
    let bytes = '';
    raw.on('data', (chunk: Buffer) => { bytes += chunk.toString('latin1'); if (bytes.includes('\r\n\r\n')) resolve(bytes); });
    raw.once('close', () => resolve(bytes));
  });
  if (how === 'half-close') raw.end(request);
  else raw.write(request, () => raw.destroy());
  // The hub answers a half-closed request (it reads the FIN only after the upgrade); a destroyed one cannot hear it.
  if (how === 'half-close') expect(await answered).toMatch(/^HTTP\/1\.1 101 /);
  await sleep(300);
  raw.destroy();
}

describe('a newer connection of a device', () => {
  for (const how of ['half-close', 'destroy'] as const) {
    it(`that upgrades and is gone (${how}) leaves the live connection alone`, async () => {
      hub = await startHub();
      const id = `gone-${how}`;
      const live = await TestDevice.connect(hub.deviceUrl, { id });
      const liveClose = watchClose(live);
      const before = (await hub.api('GET', `/v1/devices/${id}`)).body;
      expect(before).toMatchObject({ online: true });

      await abandonedUpgrade(hub, id, how);

      expect(liveClose.code).toBeUndefined();
      live.send(telemetry(1));
      expect(await live.next()).toEqual({ type: 2, seq: 1 });
      const after = (await hub.api('GET', `/v1/devices/${id}`)).body;
      expect(after).toMatchObject({ online: true, connectedAt: before.connectedAt, offlineReason: null });
      // Dropped once its close is read, at the latest after the bound (5 s); never confirmed.
      const dropped = /pulsewire_takeovers_total\{outcome="(closed|no-sign-of-life)"\} 1/;
      await expect.poll(async () => (await hub!.api('GET', '/metrics')).body as string, { timeout: 20_000, interval: 100 }).toMatch(dropped);
      expect((await hub.api('GET', '/metrics')).body).not.toMatch(/outcome="confirmed"/);
      expect(liveClose.code).toBeUndefined();
      await live.close();
    });
  }

  it('that answers the hub replaces the live one with 4000, and its first frame is not lost', async () => {
    // Ping interval 10 min: the first sweep is 5 min away, so a ping in this test is the takeover's own.
    hub = await startHub({ PULSEWIRE_PING_INTERVAL_MS: '600000' });
    const older = await TestDevice.connect(hub.deviceUrl, { id: 'twin-a' });
    let pinged = false;
    // Sends at once, at open, before it has heard anything from the hub.
    const newer = await TestDevice.connect(hub.deviceUrl, { id: 'twin-a', onPing: () => { pinged = true; } });
    newer.send(telemetry(1));
    const closed = await older.closed;
    expect(closed).toEqual({ code: 4000, reason: 'replaced by a newer connection of the same device' });
    expect(await newer.next()).toEqual({ type: 2, seq: 1 });
    newer.send(telemetry(2));
    expect(await newer.next()).toEqual({ type: 2, seq: 2 });
    await waitFor(() => pinged, { what: 'the hub pinging the newer connection (not a sweep: none is due)' });
    expect((await hub.api('GET', '/v1/devices/twin-a')).body).toMatchObject({ online: true });
    const metrics = (await hub.api('GET', '/metrics')).body as string;
    expect(metrics).toMatch(/pulsewire_takeovers_total\{outcome="confirmed"\} 1/);
    await newer.close();
  });

  it('that answers the ping replaces the live one only then (4000 after the ping)', async () => {
    hub = await startHub({ PULSEWIRE_PING_INTERVAL_MS: '600000' });
    const older = await TestDevice.connect(hub.deviceUrl, { id: 'twin-b' });
    const order: string[] = [];
    void older.closed.then((c) => order.push(`older closed ${c.code}`));
    const newer = await TestDevice.connect(hub.deviceUrl, { id: 'twin-b', onPing: () => order.push('newer pinged') }); // auto-pongs
    await older.closed;
    // The hub pinged the newer connection at once (no sweep is due for 5 min) and closed the older
    // one when the pong came; a ping is answered in the same turn it is read, so this order is causal.
    expect(order).toEqual(['newer pinged', 'older closed 4000']);
    newer.send(telemetry(1));
    expect(await newer.next()).toEqual({ type: 2, seq: 1 });
    await newer.close();
  });

  it('that sends a frame as its first sign of life is promoted then, and the frame is processed', async () => {
    hub = await startHub();
    const older = await TestDevice.connect(hub.deviceUrl, { id: 'twin-c' });
    const olderClose = watchClose(older);
    const newer = await TestDevice.connect(hub.deviceUrl, { id: 'twin-c', autoPong: false });
    await sleep(300);
    expect(olderClose.code).toBeUndefined(); // not confirmed yet: the older one still owns the device
    older.send(telemetry(1));
    expect(await older.next()).toEqual({ type: 2, seq: 1 });
    newer.send(telemetry(2));
    expect(await newer.next()).toEqual({ type: 2, seq: 2 });
    expect((await older.closed).code).toBe(4000);
    await newer.close();
  });

  it('that never answers nor sends is dropped after the bound; the live one stays', async () => {
    const interval = 1000; // bound: min(ping interval, 5 s) = 1 s
    hub = await startHub({ PULSEWIRE_PING_INTERVAL_MS: String(interval) });
    const id = 'twin-d';
    const older = await TestDevice.connect(hub.deviceUrl, { id });
    const olderClose = watchClose(older);
    const before = (await hub.api('GET', `/v1/devices/${id}`)).body;
    const opened = Date.now();
    let pinged = false;
    const zombie = await TestDevice.connect(hub.deviceUrl, { id, autoPong: false, onPing: () => { pinged = true; } });
    const dropped = await zombie.closed;
    expect(dropped.code).toBe(1006); // terminated, no close handshake
    // Not before the bound (a lower bound: load only delays it). How late is not asked here: the
    // outcome counted below says it was the bound, not the liveness sweep, that dropped it.
    expect(Date.now() - opened).toBeGreaterThanOrEqual(interval - 50);
    expect(pinged).toBe(true);

    expect(olderClose.code).toBeUndefined();
    older.send(telemetry(1));
    expect(await older.next()).toEqual({ type: 2, seq: 1 });
    expect((await hub.api('GET', `/v1/devices/${id}`)).body).toMatchObject({ online: true, connectedAt: before.connectedAt });
    const metrics = (await hub.api('GET', '/metrics')).body as string;
    expect(metrics).toMatch(/pulsewire_takeovers_total\{outcome="no-sign-of-life"\} 1/);
    await older.close();
  });

  it('waiting for its sign of life loses to a newer one that answers first (the first to show life wins)', async () => {
    hub = await startHub();
    const older = await TestDevice.connect(hub.deviceUrl, { id: 'twin-e' });
    const first = await TestDevice.connect(hub.deviceUrl, { id: 'twin-e', autoPong: false });
    const second = await TestDevice.connect(hub.deviceUrl, { id: 'twin-e' });
    expect((await first.closed).code).toBe(1006);
    expect((await older.closed).code).toBe(4000);
    second.send(telemetry(1));
    expect(await second.next()).toEqual({ type: 2, seq: 1 });
    const metrics = (await hub.api('GET', '/metrics')).body as string;
    expect(metrics).toMatch(/pulsewire_takeovers_total\{outcome="superseded"\} 1/);
    expect(metrics).toMatch(/pulsewire_takeovers_total\{outcome="confirmed"\} 1/);
    await second.close();
  });

  it('waiting for its sign of life is closed with the live one when the device is removed', async () => {
    hub = await startHub();
    const older = await TestDevice.connect(hub.deviceUrl, { id: 'twin-f' });
    const waiting = await TestDevice.connect(hub.deviceUrl, { id: 'twin-f', autoPong: false });
    expect((await hub.api('DELETE', '/v1/devices/twin-f')).status).toBe(204);
    expect((await older.closed).code).toBe(1008);
    expect((await waiting.closed).code).toBe(1008);
  });

  it('waiting for its sign of life is closed with 1001 at shutdown like the others', async () => {
    hub = await startHub();
    const older = await TestDevice.connect(hub.deviceUrl, { id: 'twin-g' });
    const waiting = await TestDevice.connect(hub.deviceUrl, { id: 'twin-g', autoPong: false });
    await waitFor(() => hub!.app.gateway.runtimes.peek('twin-g') !== undefined);
    const closing = hub.close();
    hub = undefined;
    expect((await older.closed).code).toBe(1001);
    expect((await waiting.closed).code).toBe(1001);
    // Closed with the others, not left for ws to wait out its 30 s close timeout: the close finishes
    // well before that. The ceiling is far from any slow machine's shutdown and still below 30 s.
    let ceiling: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([closing.then(() => 'closed'), new Promise((r) => { ceiling = setTimeout(r, 20_000); }).then(() => 'still closing after 20 s')]);
    clearTimeout(ceiling);
    expect(outcome).toBe('closed');
  }, 40_000);
});

describe('Takeovers (fake connections, fake clock)', () => {
  class Fake implements TakeoverCandidate {
    readonly deviceId: string;
    pings = 0;
    closedWith: number | 'terminated' | undefined;
    alive: (() => void) | undefined;
    constructor(deviceId: string) { this.deviceId = deviceId; }
    awaitSignOfLife(onAlive: () => void): void { this.pings++; this.alive = onAlive; }
    end(code: number): void { this.closedWith = code; }
    terminate(): void { this.closedWith = 'terminated'; }
  }
  const setup = () => {
    const outcomes: Array<[Fake, TakeoverOutcome]> = [];
    const promoted: Fake[] = [];
    const takeovers = new Takeovers<Fake>({ boundMs: 1000, settled: (c, o) => outcomes.push([c, o]) });
    const hold = (c: Fake) => takeovers.hold(c, () => promoted.push(c));
    return { takeovers, outcomes, promoted, hold };
  };

  it('bounds the wait by the ping interval, at most 5 s', () => {
    expect(confirmBoundMs(25_000)).toBe(5000);
    expect(confirmBoundMs(300)).toBe(300);
  });

  it('pings at once, promotes at the first sign of life, and a later close is the session\'s business', () => {
    const { takeovers, outcomes, promoted, hold } = setup();
    const c = new Fake('d');
    hold(c);
    expect(c.pings).toBe(1);
    expect(promoted).toEqual([]);
    c.alive!();
    expect(promoted).toEqual([c]);
    expect(outcomes).toEqual([[c, 'confirmed']]);
    expect(takeovers.closed(c, 'code 1000')).toBe(false);
    expect(takeovers.size).toBe(0);
  });

  it('drops a silent one after the bound; its close is then reported no more', () => {
    vi.useFakeTimers();
    try {
      const { takeovers, outcomes, promoted, hold } = setup();
      const c = new Fake('d');
      hold(c);
      vi.advanceTimersByTime(999);
      expect(c.closedWith).toBeUndefined();
      vi.advanceTimersByTime(1);
      expect(c.closedWith).toBe('terminated');
      c.alive!(); // a pong already in flight changes nothing
      expect(takeovers.closed(c, 'code 1006')).toBe(true);
      expect(promoted).toEqual([]);
      expect(outcomes).toEqual([[c, 'no-sign-of-life']]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('lets the first of several to show life take over and drops the others', () => {
    const { outcomes, promoted, hold } = setup();
    const [a, b, other] = [new Fake('d'), new Fake('d'), new Fake('e')];
    hold(a); hold(b); hold(other);
    b.alive!();
    expect(promoted).toEqual([b]);
    expect(a.closedWith).toBe('terminated');
    expect(other.closedWith).toBeUndefined();
    expect(outcomes).toEqual([[b, 'confirmed'], [a, 'superseded']]);
  });

  it(`keeps at most ${MAX_WAITING_PER_DEVICE} waiting per device, dropping the oldest`, () => {
    const { takeovers, hold } = setup();
    const all = Array.from({ length: MAX_WAITING_PER_DEVICE + 1 }, () => new Fake('d'));
    for (const c of all) hold(c);
    expect(all.map((c) => c.closedWith)).toEqual(['terminated', ...all.slice(1).map(() => undefined)]);
    expect(takeovers.size).toBe(MAX_WAITING_PER_DEVICE);
  });

  it('closes waiting ones with the given code on kick and shutdown, and reports a close by itself once', () => {
    const { takeovers, outcomes, hold } = setup();
    const [a, b, c] = [new Fake('d'), new Fake('e'), new Fake('f')];
    hold(a); hold(b); hold(c);
    expect(takeovers.end('d', 1008, 'revoked', 'kicked')).toBe(1);
    expect(takeovers.closed(c, 'code 1006')).toBe(true);
    expect(takeovers.closed(c, 'code 1006')).toBe(false);
    expect(takeovers.endAll(1001, 'hub going away')).toEqual([b]);
    expect([a.closedWith, b.closedWith, c.closedWith]).toEqual([1008, 1001, undefined]);
    expect(outcomes.map(([f, o]) => [f.deviceId, o])).toEqual([['d', 'kicked'], ['f', 'closed'], ['e', 'hub shutdown']]);
  });
});
