import { Encoder } from 'cbor-x';
import { afterEach, describe, expect, it } from 'vitest';
import type { HubEvents } from '../../src/events/bus.js';
import { TestDevice } from '../support/device-client.js';
import { startHub, type TestHub } from '../support/hub.js';
import { waitFor } from '../support/wait.js';

const cbor = new Encoder({ useRecords: false, mapsAsObjects: false, variableMapSize: true });
const telemetry = (seq: number, name: string, value: number) => cbor.encode([1, seq, [new Map<number, unknown>([[0, name], [2, value]])]]);

let hub: TestHub | undefined;
afterEach(async () => { await hub?.close(); hub = undefined; });

function offlineEvents(h: TestHub): HubEvents['device.offline'][] {
  const events: HubEvents['device.offline'][] = [];
  h.app.bus.on('device.offline', (e) => events.push(e));
  return events;
}

describe('liveness', () => {
  // How soon (two intervals) is proved with a fake clock in liveness.test.ts and measured by
  // `npm run bench -- liveness`; here, on a real hub, only what happens. The interval is long enough
  // that the healthy device's pong is read in time even when the event loop is held up for a while.
  it('marks a device that stops answering pings offline with ping-timeout, and only that one', async () => {
    const interval = 1000;
    hub = await startHub({ PULSEWIRE_PING_INTERVAL_MS: String(interval) });
    const events = offlineEvents(hub);
    const healthy = await TestDevice.connect(hub.deviceUrl, { id: 'alive-1' });
    const connectedAt = Date.now();
    const zombie = await TestDevice.connect(hub.deviceUrl, { id: 'zombie-1', autoPong: false });
    await expect.poll(() => events.find((e) => e.deviceId === 'zombie-1')).toBeTruthy();
    const event = events.find((e) => e.deviceId === 'zombie-1')!;
    expect(event.reason).toBe('ping-timeout');
    // Never before its ping had time to be answered: the sweep judges a ping one interval old from
    // three quarters of an interval on (src/gateway/liveness.ts). A lower bound: load only delays it.
    expect(event.at - connectedAt).toBeGreaterThanOrEqual(0.75 * interval);
    expect((await zombie.closed).code).toBe(1006); // terminated, no close handshake
    expect(events.find((e) => e.deviceId === 'alive-1')).toBeUndefined();

    const info = await hub.api('GET', '/v1/devices/zombie-1');
    expect(info.body).toMatchObject({ online: false, offlineReason: 'ping-timeout' });
    await expect.poll(async () => hub!.db.query(`SELECT "online", "reason" FROM "device_status" WHERE "device" = 'zombie-1' ORDER BY time ASC`))
      .toMatchObject([{ online: true, reason: 'connected' }, { online: false, reason: 'ping-timeout' }]);
    const metrics = await hub.api('GET', '/metrics');
    expect(metrics.body).toMatch(/pulsewire_ping_timeouts_total 1/);
    await healthy.close();
  });
});

describe('receipt times', () => {
  it('stores every "now" reading of a fast device: no two messages share a timestamp', async () => {
    hub = await startHub();
    const device = await TestDevice.connect(hub.deviceUrl, { id: 'fast-1' });
    for (let seq = 0; seq < 300; seq++) device.send(telemetry(seq, 'same', seq));
    for (let i = 0; i < 300; i++) expect(await device.next()).toMatchObject({ type: 2 });
    await device.close();
    const rows = await hub.db.query(`SELECT count("value") FROM "telemetry" WHERE "device" = 'fast-1'`);
    expect(Number(rows[0]?.count)).toBe(300);
  });
});

describe('takeover', () => {
  it('closes the older connection with 4000 and keeps the device online', async () => {
    hub = await startHub();
    const events = offlineEvents(hub);
    const older = await TestDevice.connect(hub.deviceUrl, { id: 'twin-1' });
    const newer = await TestDevice.connect(hub.deviceUrl, { id: 'twin-1' });
    const closed = await older.closed;
    expect(closed.code).toBe(4000);
    expect(closed.reason).toMatch(/replaced/);
    newer.send(telemetry(1, 'v', 1));
    expect(await newer.next()).toEqual({ type: 2, seq: 1 });
    expect((await hub.api('GET', '/v1/devices/twin-1')).body.online).toBe(true);
    expect(events).toHaveLength(0);
    await newer.close();
    await expect.poll(() => events.map((e) => e.reason)).toEqual(['closed by device']);
  });
});

describe('shutdown', () => {
  it('finishes closing while devices told 1001 reconnect at once (a reconnect storm)', async () => {
    hub = await startHub();
    const h = hub;
    const devices = await Promise.all([1, 2, 3, 4, 5].map((i) => TestDevice.connect(h.deviceUrl, { id: `storm-${i}` })));
    let closing = false;
    let attempts = 0;
    // Each device reconnects the moment it is closed, again and again, while the hub closes.
    const storms = devices.map(async (d, i) => {
      await d.closed;
      while (closing) {
        attempts++;
        const again = await TestDevice.connect(h.deviceUrl, { id: `storm-${i + 1}` }).catch(() => undefined);
        if (again) await again.close();
        await new Promise((r) => setTimeout(r, 5));
      }
    });
    closing = true;
    // A hub that let the storm back in would never finish closing; 30 s is far beyond a slow close.
    let ceiling: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      h.close().then(() => 'closed'),
      new Promise((r) => { ceiling = setTimeout(r, 30_000); }).then(() => 'still closing after 30 s'),
    ]);
    clearTimeout(ceiling);
    closing = false;
    hub = undefined;
    await Promise.all(storms);
    expect(outcome).toBe('closed');
    expect(attempts).toBeGreaterThan(0);
  }, 60_000);

  it('closes every device with 1001, loses nothing acknowledged, and records hub shutdown', async () => {
    hub = await startHub();
    const devices = await Promise.all([1, 2, 3].map((i) => TestDevice.connect(hub!.deviceUrl, { id: `sd-${i}` })));
    const acked = [0, 0, 0];
    const sent = [0, 0, 0];
    const sending = devices.map(async (d, i) => {
      for (let seq = 0; seq < 50; seq++) {
        if (d.socket.readyState !== d.socket.OPEN) return;
        d.send(telemetry(seq, 'x', seq));
        sent[i]!++;
        const ack = await d.next(5000).catch(() => undefined);
        if (ack && ack.type === 2 && (ack.code ?? 0) === 0) acked[i]!++;
      }
    });
    // Shut down mid-stream: once every device has had an ACK, not after a guessed delay.
    await waitFor(() => acked.every((n) => n > 0), { what: 'an ACK for every device' });
    const db = hub.db;
    const closing = hub.close();
    const codes = await Promise.all(devices.map((d) => d.closed.then((c) => c.code)));
    await closing;
    await Promise.all(sending);
    expect(codes).toEqual([1001, 1001, 1001]);
    for (let i = 0; i < 3; i++) {
      const rows = await db.query(`SELECT count("value") FROM "telemetry" WHERE "device" = 'sd-${i + 1}'`);
      // Every ACKed message is stored; one the hub took in but could not ACK before closing may be too.
      const stored = Number(rows[0]?.count ?? 0);
      expect(stored).toBeGreaterThanOrEqual(acked[i]!);
      expect(stored).toBeLessThanOrEqual(sent[i]!);
    }
    const status = await db.query(`SELECT "reason" FROM "device_status" WHERE "online" = false`);
    expect(status.map((r: any) => r.reason)).toEqual(['hub shutdown', 'hub shutdown', 'hub shutdown']);
  });
});
