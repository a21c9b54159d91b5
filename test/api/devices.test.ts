import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDevice } from '../support/device-client.js';
import { startHub, type TestHub } from '../support/hub.js';
import { unreachable } from '../support/ports.js';

describe('operator API', () => {
  let hub: TestHub;
  beforeAll(async () => { hub = await startHub(); });
  afterAll(async () => { await hub?.close(); });

  it('requires the bearer token on every operator endpoint', async () => {
    for (const route of ['/v1/devices', '/v1/devices/a', '/metrics']) {
      const none = await fetch(`${hub.baseUrl}${route}`);
      expect(none.status).toBe(401);
      expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
      const wrong = await hub.api('GET', route, undefined, 'wrong-token-wrong-token');
      expect(wrong.status).toBe(401);
      expect(wrong.body.error.code).toBe('PW_ERR_OPERATOR_AUTH');
    }
    expect((await hub.api('PUT', '/v1/devices/x', undefined, 'nope')).status).toBe(401);
  });

  it('registers a device, shows its secret once, and re-issues on a second PUT', async () => {
    const first = await hub.api('PUT', '/v1/devices/api-1');
    expect(first.status).toBe(201);
    expect(first.body.id).toBe('api-1');
    const read = await hub.api('GET', '/v1/devices/api-1');
    expect(read.status).toBe(200);
    expect(JSON.stringify(read.body)).not.toContain(first.body.secret);
    expect(read.body).toMatchObject({ id: 'api-1', online: false, provisioning: 'registered', messagesIn: 0 });
    const second = await hub.api('PUT', '/v1/devices/api-1');
    expect(second.body.secret).not.toBe(first.body.secret);
    await expect(TestDevice.connect(hub.deviceUrl, { id: 'api-1', secret: first.body.secret })).rejects.toMatchObject({ status: 401 });
  });

  it('answers bad ids and unknown devices clearly', async () => {
    const bad = await hub.api('PUT', '/v1/devices/has%20space');
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('PW_ERR_BAD_REQUEST');
    const missing = await hub.api('GET', '/v1/devices/never-seen');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('PW_ERR_DEVICE_NOT_FOUND');
    expect((await hub.api('DELETE', '/v1/devices/never-seen')).status).toBe(404);
    const badLimit = await hub.api('GET', '/v1/devices?limit=5000');
    expect(badLimit.status).toBe(400);
  });

  it('lists devices in pages with a cursor, by prefix and by online state', async () => {
    for (let i = 0; i < 7; i++) await hub.api('PUT', `/v1/devices/page-${i}`);
    const online = await TestDevice.connect(hub.deviceUrl, { id: 'page-3' });
    const pages: string[][] = [];
    let cursor: string | null = null;
    do {
      const query: string = `/v1/devices?prefix=page-&limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const page = await hub.api('GET', query);
      expect(page.status).toBe(200);
      pages.push(page.body.devices.map((d: { id: string }) => d.id));
      cursor = page.body.nextCursor;
    } while (cursor && pages.length < 10);
    expect(pages).toEqual([['page-0', 'page-1', 'page-2'], ['page-3', 'page-4', 'page-5'], ['page-6']]);
    const onlineOnly = await hub.api('GET', '/v1/devices?prefix=page-&online=true');
    expect(onlineOnly.body.devices.map((d: { id: string }) => d.id)).toEqual(['page-3']);
    expect(onlineOnly.body.devices[0]).toMatchObject({ online: true, remoteAddress: '127.0.0.1' });
    const offline = await hub.api('GET', '/v1/devices?prefix=page-&online=false');
    expect(offline.body.devices).toHaveLength(6);
    await online.close();
  });

  it('removes a device and closes its connection with 1008', async () => {
    await hub.api('PUT', '/v1/devices/doomed-1');
    const { body } = await hub.api('PUT', '/v1/devices/doomed-1');
    const device = await TestDevice.connect(hub.deviceUrl, { id: 'doomed-1', secret: body.secret });
    const removed = await hub.api('DELETE', '/v1/devices/doomed-1');
    expect(removed.status).toBe(204);
    expect((await device.closed).code).toBe(1008);
    expect((await hub.api('GET', '/v1/devices/doomed-1')).status).toBe(404);
    await expect(TestDevice.connect(hub.deviceUrl, { id: 'doomed-1', secret: body.secret })).rejects.toMatchObject({ status: 401 });
  });

  it('keeps a removed enrollment device from re-enrolling until it is registered again', async () => {
    const device = await TestDevice.connect(hub.deviceUrl, { id: 'zt-gone' });
    expect((await hub.api('DELETE', '/v1/devices/zt-gone')).status).toBe(204);
    expect((await device.closed).code).toBe(1008);
    await expect(TestDevice.connect(hub.deviceUrl, { id: 'zt-gone' })).rejects.toMatchObject({ status: 401 });
  });

  it('counts messages per device', async () => {
    const startedMs = Date.now();
    const device = await TestDevice.connect(hub.deviceUrl, { id: 'counted-1' });
    device.sendHex('8301008100'); // [1, 0, [0]]: malformed pack, still a message
    await device.next();
    device.sendHex('8301018100');
    await device.next();
    const info = await hub.api('GET', '/v1/devices/counted-1');
    expect(info.body.messagesIn).toBe(2);
    // Seen by the hub's clock during this test.
    expect(Date.parse(info.body.lastSeen)).toBeGreaterThanOrEqual(startedMs);
    expect(Date.parse(info.body.lastSeen)).toBeLessThanOrEqual(Date.now());
    await device.close();
  });

  it('serves health, readiness, metrics and an OpenAPI document', async () => {
    expect((await fetch(`${hub.baseUrl}/healthz`)).status).toBe(200);
    const ready = await fetch(`${hub.baseUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ checks: { listening: true, influx: true } });
    const metrics = await hub.api('GET', '/metrics');
    expect(metrics.status).toBe(200);
    for (const name of ['pulsewire_devices_online', 'pulsewire_messages_in_total', 'pulsewire_acks_total', 'pulsewire_write_batches_total', 'pulsewire_ping_timeouts_total']) {
      expect(metrics.body).toContain(name);
    }
    // Devices connected above, so status points (at least) went through the spool: its commits are timed.
    const commits = /^pulsewire_spool_commit_seconds_count (\d+)$/m.exec(metrics.body as string);
    expect(Number(commits?.[1])).toBeGreaterThan(0);
    expect(metrics.body).toMatch(/^pulsewire_spool_commit_seconds_bucket\{le="0.05"\} \d+$/m);
    const openapi = (await (await fetch(`${hub.baseUrl}/openapi.json`)).json()) as { openapi: string; paths: Record<string, unknown> };
    expect(openapi.openapi).toMatch(/^3\./);
    expect(Object.keys(openapi.paths)).toEqual(expect.arrayContaining(['/v1/devices', '/v1/devices/{id}']));
  });
});

describe('without InfluxDB', () => {
  it('reports 503 on /readyz naming the failed check, and still answers telemetry with ACK 0 (spooled)', async () => {
    const nowhere = await unreachable();
    const hub = await startHub({ PULSEWIRE_SHUTDOWN_TIMEOUT_MS: '1000' }, { influxUrl: nowhere.url('/pulsewire') });
    try {
      const ready = await fetch(`${hub.baseUrl}/readyz`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({ checks: { influx: false, spool: true } });
      const device = await TestDevice.connect(hub.deviceUrl, { id: 'no-storage-1' });
      device.sendHex('830101' + '81a2006178020f'); // [1, 1, [{n: "x", v: 15}]]
      // Issue 5: an InfluxDB outage no longer stalls devices; the reading waits in the spool.
      expect(await device.next(20_000)).toEqual({ type: 2, seq: 1 });
      // The message and the device's online status point (status points are spooled in batches, within 10 ms).
      await expect.poll(() => hub.app.spool.stats, { timeout: 10_000 }).toMatchObject({ entries: 2, points: 2 });
      await device.close();
    } finally {
      await hub.close();
      await nowhere.release();
    }
  });
});
