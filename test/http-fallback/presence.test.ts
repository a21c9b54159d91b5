/**
 * Presence of HTTP fallback devices (protocol section 8) on a real hub with a
 * short ping interval: online while a request is open or one was made within
 * 2 x pingInterval, then offline with `poll-timeout`, with the same events,
 * registry status and device_status points as WebSocket devices.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HubEvents } from '../../src/events/bus.js';
import { TestDevice } from '../support/device-client.js';
import { startHub, type TestHub } from '../support/hub.js';
import { HttpDevice } from '../support/http-device.js';
import { sleep, until } from '../support/wait.js';

/**
 * Long enough that "requests keep coming" (one every quarter interval) leaves a device online even
 * when the machine holds a request up for a second; short enough to see poll-timeouts in seconds.
 */
const PING_MS = 1000;

describe('HTTP fallback: presence', () => {
  let hub: TestHub;
  const events: { kind: 'online' | 'offline'; deviceId: string; reason?: string; at: number }[] = [];
  beforeAll(async () => {
    hub = await startHub({ PULSEWIRE_PING_INTERVAL_MS: String(PING_MS) });
    hub.app.bus.on('device.online', (e: HubEvents['device.online']) => events.push({ kind: 'online', deviceId: e.deviceId, at: Date.now() }));
    hub.app.bus.on('device.offline', (e: HubEvents['device.offline']) => events.push({ kind: 'offline', deviceId: e.deviceId, reason: e.reason, at: Date.now() }));
  });
  afterAll(async () => { await hub?.close(); });

  const of = (id: string) => events.filter((e) => e.deviceId === id).map((e) => (e.kind === 'online' ? 'online' : `offline:${e.reason}`));
  const view = async (id: string) => (await hub.api('GET', `/v1/devices/${id}`)).body;

  it('one request: online at once, offline with poll-timeout after 2 x pingInterval, recorded everywhere', async () => {
    const id = 'pres-once';
    const device = new HttpDevice(hub.baseUrl, id);
    const sentAt = Date.now();
    expect((await device.poll()).status).toBe(200);
    expect(of(id)).toEqual(['online']);
    expect(await view(id)).toMatchObject({ online: true });
    const offline = await until(() => events.find((e) => e.deviceId === id && e.kind === 'offline'));
    expect(offline.reason).toBe('poll-timeout');
    // Not before 2 x pingInterval (a lower bound: load only delays it); how soon after is the sweep's.
    expect(offline.at - sentAt).toBeGreaterThanOrEqual(2 * PING_MS);
    // The registry's copy of a status change is written in a batch (every 10 ms), after the event.
    expect(await until(async () => { const v = await view(id); return v.offlineReason === null ? undefined : v; })).toMatchObject({ online: false, offlineReason: 'poll-timeout' });
    const rows = await until(async () => {
      const r = await hub.db.query(`SELECT "online", "reason" FROM device_status WHERE device = '${id}' ORDER BY time ASC`);
      return r.length === 2 ? r : undefined;
    });
    expect(rows.map((r) => [r.online, r.reason])).toEqual([[true, 'connected'], [false, 'poll-timeout']]);
  });

  it('stays online while a long poll is open longer than 2 x pingInterval, and while requests keep coming', async () => {
    const id = 'pres-poll';
    const device = new HttpDevice(hub.baseUrl, id);
    const polling = device.poll(3); // 3 s = 1.5 x the idle timeout (2 x pingInterval)
    await sleep(2500); // past the idle timeout, while the poll is still open: online all along
    expect(of(id)).toEqual(['online']);
    expect(await view(id)).toMatchObject({ online: true });
    expect((await polling).hex).toBe('80');
    for (let i = 0; i < 4; i++) {
      await sleep(PING_MS / 4);
      await device.poll();
    }
    expect(of(id)).toEqual(['online']);
    await until(() => (of(id).length === 2 ? true : undefined));
    expect(of(id)).toEqual(['online', 'offline:poll-timeout']);
  });

  it('a WebSocket takes over from HTTP without an offline event; its open poll is answered at once', async () => {
    const id = 'pres-takeover';
    const device = new HttpDevice(hub.baseUrl, id);
    const polling = device.poll(30);
    await until(() => (of(id).length === 1 ? true : undefined));
    const ws = await TestDevice.connect(hub.deviceUrl, { id });
    expect((await polling).hex).toBe('80');
    await sleep(2.5 * PING_MS); // past the HTTP presence's idle timeout: it must not fire now
    expect(of(id)).toEqual(['online', 'online']);
    expect(await view(id)).toMatchObject({ online: true });
    await ws.close();
    await until(() => (of(id).length === 3 ? true : undefined));
    expect(of(id)[2]).toBe('offline:closed by device');
  });

  it('removing the device ends its HTTP presence (kicked) and answers its poll', async () => {
    const id = 'pres-kick';
    const secret = (await hub.api('PUT', `/v1/devices/${id}`)).body.secret as string;
    const device = new HttpDevice(hub.baseUrl, id, secret);
    const polling = device.poll(30);
    await until(() => (of(id).length === 1 ? true : undefined));
    expect((await hub.api('DELETE', `/v1/devices/${id}`)).status).toBeLessThan(300);
    expect((await polling).hex).toBe('80');
    expect(of(id)).toEqual(['online', 'offline:kicked']);
    expect((await device.poll()).status).toBe(401);
  });
});

describe('HTTP fallback: hub shutdown', () => {
  it('answers open polls at once with [] and records hub shutdown', async () => {
    const hub = await startHub();
    const reasons: string[] = [];
    hub.app.bus.on('device.offline', (e) => reasons.push(e.reason));
    const polling = new HttpDevice(hub.baseUrl, 'pres-shutdown').poll(60);
    await until(() => (hub.app.gateway.runtimes.onlineCount === 1 ? true : undefined));
    const started = Date.now();
    await hub.close();
    expect((await polling).hex).toBe('80');
    // Answered by the shutdown, not at the end of its minute (a ceiling no slow machine reaches).
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(reasons).toEqual(['hub shutdown']);
  }, 60_000);
});
