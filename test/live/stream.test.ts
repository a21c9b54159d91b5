import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TestDevice } from '../support/device-client.js';
import { restartableHub, startHub, type TestHub } from '../support/hub.js';
import { encodeTelemetry } from '../../src/protocol/encode.js';
import { LiveClient, telemetry, type Frame } from './live-client.js';

describe('live stream over WebSocket', () => {
  let hub: TestHub;
  beforeAll(async () => {
    hub = await startHub();
  });
  afterAll(async () => { await hub?.close(); });

  it('greets with hello, then a snapshot of device statuses and latest values', async () => {
    const device = await TestDevice.connect(hub.deviceUrl, { id: 'snap-1' });
    const t = Math.floor(Date.now() / 1000);
    device.send(telemetry(1, { temp: 21.5, hum: 40 }, t));
    expect(await device.next()).toEqual({ type: 2, seq: 1 });

    const live = await LiveClient.connect(hub.baseUrl);
    expect(await live.next()).toEqual({ type: 'hello', version: 1, tickMs: 100 });
    const snapshot = await live.next();
    expect(snapshot.type).toBe('snapshot');
    expect(snapshot.devices).toContainEqual(expect.objectContaining({ device: 'snap-1', online: true, reason: 'connected' }));
    expect(snapshot.counts).toEqual({ online: 1, offline: 0 }); // the first test: snap-1 is the hub's only device
    expect(snapshot.latest).toContainEqual({ device: 'snap-1', name: 'temp', t: t * 1000, kind: 'value', v: 21.5 });
    expect(snapshot.latest).toContainEqual(expect.objectContaining({ device: 'snap-1', name: 'hum', v: 40 }));

    await device.close();
    const offline = await live.next((f) => f.type === 'events' && f.status?.some((s: Frame) => s.device === 'snap-1' && !s.online));
    expect(offline.status).toContainEqual(expect.objectContaining({ device: 'snap-1', online: false, reason: 'closed by device' }));
    expect(offline.seq).toBeGreaterThan(snapshot.seq!);
    await live.close();
  });

  it('streams a device an operator registers, and one removed with its series, which later snapshots leave out', async () => {
    const live = await LiveClient.connect(hub.baseUrl);
    await live.next((f) => f.type === 'snapshot');
    expect((await hub.api('PUT', '/v1/devices/reg-live')).status).toBe(201);
    const registered = await live.next((f) => f.type === 'events' && f.status?.some((s: Frame) => s.device === 'reg-live'));
    expect(registered.status).toContainEqual(expect.objectContaining({ device: 'reg-live', online: false, reason: 'never connected' }));

    const device = await TestDevice.connect(hub.deviceUrl, { id: 'rm-live' });
    device.send(telemetry(1, { temp: 20 }, Math.floor(Date.now() / 1000)));
    expect(await device.next()).toEqual({ type: 2, seq: 1 });
    expect((await hub.api('DELETE', '/v1/devices/rm-live')).status).toBe(204);
    const removed = await live.next((f) => f.type === 'events' && f.status?.some((s: Frame) => s.device === 'rm-live' && s.removed));
    // Its connect may share the tick; the removal is its last word.
    expect(removed.status.filter((s: Frame) => s.device === 'rm-live').at(-1)).toEqual(expect.objectContaining({ online: false, reason: 'removed', removed: true }));

    const later = await LiveClient.connect(hub.baseUrl);
    const snapshot = await later.next((f) => f.type === 'snapshot');
    expect(snapshot.devices.map((s: Frame) => s.device)).toContain('reg-live');
    expect(snapshot.devices.map((s: Frame) => s.device)).not.toContain('rm-live');
    expect(snapshot.latest.map((r: Frame) => r.device)).not.toContain('rm-live');
    // The removed device's connection closes (1008) around its removal; that close is not news.
    expect((await device.closed).code).toBe(1008);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(live.seen.some((f) => f.type === 'events' && f.status?.some((s: Frame) => s.device === 'rm-live' && !s.online && !s.removed))).toBe(false);
    await live.close();
    await later.close();
  });

  it('batches many readings into a few frames, one per tick at most', async () => {
    const live = await LiveClient.connect(hub.baseUrl);
    await live.next((f) => f.type === 'snapshot');
    live.send({ type: 'subscribe', devices: ['batch-1'] });
    expect((await live.next((f) => f.type === 'snapshot')).latest).toEqual([]);
    const device = await TestDevice.connect(hub.deviceUrl, { id: 'batch-1' });
    const t0 = Date.now() / 1000;
    for (let seq = 0; seq < 200; seq++) {
      device.send(telemetry(seq, { n: seq }, t0 + seq / 1000));
      if (seq % 32 === 31) for (let i = 0; i < 32; i++) await device.next();
    }
    for (let i = 0; i < 200 % 32; i++) await device.next();
    const readings: Frame[] = [];
    const seqs: number[] = [];
    while (readings.length < 200) {
      const frame = await live.next((f) => f.type === 'events' && f.readings !== undefined);
      seqs.push(frame.seq!);
      readings.push(...frame.readings);
    }
    expect(readings.map((r) => r.v)).toEqual([...Array(200).keys()]);
    // One frame per tick at most: each carries its tick's seq, so no two share one. How many ticks the
    // 200 span depends on the machine's speed; that frames carry several readings does not.
    expect(seqs).toEqual([...new Set(seqs)].sort((a, b) => a - b));
    expect(seqs.length).toBeLessThan(readings.length);
    await device.close();
    await live.close();
  });

  it('never lets a late reading replace a newer one, in events or the snapshot', async () => {
    const live = await LiveClient.connect(hub.baseUrl);
    await live.next((f) => f.type === 'snapshot');
    live.send({ type: 'subscribe', devices: ['late-1'] });
    await live.next((f) => f.type === 'snapshot');
    const device = await TestDevice.connect(hub.deviceUrl, { id: 'late-1' });
    const now = Math.floor(Date.now() / 1000);
    device.send(telemetry(1, { temp: 30 }, now));
    await device.next();
    device.send(telemetry(2, { temp: 10 }, now - 60));
    await device.next();
    device.send(telemetry(3, { marker: 1 }, now));
    await device.next();
    const events: Frame[] = [];
    while (!events.some((r) => r.name === 'marker')) events.push(...(await live.next((f) => f.type === 'events' && f.readings)).readings);
    expect(events.filter((r) => r.name === 'temp').map((r) => r.v)).toEqual([30]);

    live.send({ type: 'subscribe', devices: ['late-1'], names: ['temp'] });
    const snapshot = await live.next((f) => f.type === 'snapshot');
    expect(snapshot.latest).toEqual([{ device: 'late-1', name: 'temp', t: now * 1000, kind: 'value', v: 30 }]);
    await device.close();
    await live.close();
  });

  it('narrows the stream to the subscribed devices and names, prefixes included', async () => {
    const live = await LiveClient.connect(hub.baseUrl);
    await live.next((f) => f.type === 'snapshot');
    live.send({ type: 'subscribe', devices: ['flt-a*', 'flt-exact'], names: ['te*'] });
    const snapshot = await live.next((f) => f.type === 'snapshot');
    expect(snapshot.devices).toEqual([]);
    const devices = await Promise.all(['flt-a1', 'flt-b1', 'flt-exact'].map((id) => TestDevice.connect(hub.deviceUrl, { id })));
    for (const [i, d] of devices.entries()) {
      d.send(telemetry(1, { temp: i, hum: 50 }));
      await d.next();
    }
    // Read until flt-exact's reading, the last thing the hub was sent: the stream keeps the bus's
    // order, so whatever the filter let through of the rest came in that frame or before it.
    const seen = { readings: [] as Frame[], status: [] as Frame[] };
    while (!seen.readings.some((r) => r.device === 'flt-exact')) {
      const frame = await live.next((f) => f.type === 'events');
      seen.readings.push(...(frame.readings ?? []));
      seen.status.push(...(frame.status ?? []));
    }
    expect(new Set(seen.readings.map((r) => `${r.device}/${r.name}`))).toEqual(new Set(['flt-a1/temp', 'flt-exact/temp']));
    expect(new Set(seen.status.map((s) => s.device))).toEqual(new Set(['flt-a1', 'flt-exact']));
    await Promise.all(devices.map((d) => d.close()));
    await live.close();
  });

  it('answers a bad subscribe with an error frame and keeps streaming', async () => {
    const live = await LiveClient.connect(hub.baseUrl);
    await live.next((f) => f.type === 'snapshot');
    const notEvents = (f: Frame) => f.type !== 'events';
    live.send({ type: 'subscribe', devices: 'not a list' });
    expect(await live.next(notEvents)).toMatchObject({ type: 'error', code: 'PW_ERR_LIVE_SUBSCRIBE', message: expect.stringContaining('devices') });
    live.send('{');
    expect(await live.next(notEvents)).toMatchObject({ type: 'error', code: 'PW_ERR_LIVE_SUBSCRIBE' });
    live.send({ type: 'subscribe' });
    expect((await live.next(notEvents)).type).toBe('snapshot');
    await live.close();
  });

  it('carries command, state and job events from the bus, filtered by device', async () => {
    const live = await LiveClient.connect(hub.baseUrl);
    await live.next((f) => f.type === 'snapshot');
    live.send({ type: 'subscribe', devices: ['cmd-1'] });
    await live.next((f) => f.type === 'snapshot');
    const command = { id: 'c1', deviceId: 'cmd-1', name: 'reboot', args: null, status: 'sent' as const, createdAt: new Date().toISOString(), ttlMs: 1000, timeoutMs: 1000 };
    hub.app.bus.emit('command.status', { command: { ...command, deviceId: 'other' }, previous: undefined });
    hub.app.bus.emit('command.status', { command, previous: 'queued' });
    hub.app.bus.emit('state.reported', { deviceId: 'cmd-1', reported: { fw: '1.2' }, at: 5 });
    hub.app.bus.emit('state.desired', { deviceId: 'cmd-1', desired: { led: true }, version: 3, at: 6 });
    const job = { id: 'j1', status: 'in-progress' as const, command: { name: 'reboot', args: null }, target: { prefix: 'cmd-' }, rolloutPerSecond: 1, abortThresholdPct: 50, abortMinFinished: 10, total: 1, dispatched: 1, skipped: 0, counts: { sent: 1 }, createdAt: new Date().toISOString() };
    hub.app.bus.emit('job.progress', { job });
    const frame = await live.next((f) => f.type === 'events');
    expect(frame.commands).toEqual([command]);
    expect(frame.state).toEqual([
      { device: 'cmd-1', kind: 'reported', state: { fw: '1.2' }, at: 5 },
      { device: 'cmd-1', kind: 'desired', state: { led: true }, version: 3, at: 6 },
    ]);
    expect(frame.jobs).toEqual([job]);
    expect(frame.readings).toBeUndefined();
    expect(frame.conflated).toBe(false);
    await live.close();
  });
});

describe('live snapshot after a restart', () => {
  // Each test has its own data dir and database, and closes its hubs before the next one starts:
  // a hub left open on a data dir another test restarts would share its state with it.
  let hubs: Awaited<ReturnType<typeof restartableHub>> | undefined;
  afterEach(async () => {
    await hubs?.close();
    hubs = undefined;
  });

  it('lists devices known to the registry, offline with their last reason, before any of them reconnects', async () => {
    hubs = await restartableHub('live-registry');
    const first = await hubs.start();
    await first.api('PUT', '/v1/devices/reg-never');
    const device = await TestDevice.connect(first.deviceUrl, { id: 'reg-gone' });
    await device.close();
    await first.close();

    const second = await hubs.start();
    const live = await LiveClient.connect(second.baseUrl);
    const snapshot = await live.next((f) => f.type === 'snapshot');
    expect(snapshot.counts).toEqual({ online: 0, offline: 2 });
    expect(snapshot.devices).toContainEqual(expect.objectContaining({ device: 'reg-never', online: false, reason: 'never connected' }));
    expect(snapshot.devices).toContainEqual(expect.objectContaining({ device: 'reg-gone', online: false, reason: 'closed by device' }));
    await live.close();
  });

  it('keeps every series\' latest value, by reading time, across a restart: seeded from InfluxDB, not streamed', async () => {
    hubs = await restartableHub('live-seed');
    const first = await hubs.start();
    const device = await TestDevice.connect(first.deviceUrl, { id: 'seed-1' });
    const t = Math.floor(Date.now() / 1000) - 60;
    device.send(encodeTelemetry(1, [
      { n: 'temp', v: 21.5, u: 'Cel', t }, { n: 'energy', s: 1234.5, u: 'Wh', t }, { n: 'mode', vs: 'eco', t }, { n: 'door', vb: true, t },
    ]));
    expect(await device.next()).toEqual({ type: 2, seq: 1 });
    // An older reading sent after the newer one: history, not the latest value, after a restart too.
    device.send(encodeTelemetry(2, [{ n: 'temp', v: 99, u: 'Cel', t: t - 30 }]));
    expect(await device.next()).toEqual({ type: 2, seq: 2 });
    await device.close();
    // A removed device's readings stay in InfluxDB, but it is in no snapshot, after a restart either.
    const gone = await TestDevice.connect(first.deviceUrl, { id: 'seed-gone' });
    gone.send(encodeTelemetry(1, [{ n: 'temp', v: 1, t }]));
    expect(await gone.next()).toEqual({ type: 2, seq: 1 });
    expect((await first.api('DELETE', '/v1/devices/seed-gone')).status).toBe(204);
    await first.close();

    const second = await hubs.start();
    expect(await second.app.liveSeeded).toBe(true);
    const live = await LiveClient.connect(second.baseUrl);
    const snapshot = await live.next((f) => f.type === 'snapshot');
    const mine = snapshot.latest.filter((r: Frame) => r.device === 'seed-1');
    expect(mine).toHaveLength(4);
    expect(snapshot.latest.filter((r: Frame) => r.device === 'seed-gone')).toEqual([]);
    expect(mine).toEqual(expect.arrayContaining([
      { device: 'seed-1', name: 'temp', unit: 'Cel', t: t * 1000, kind: 'value', v: 21.5 },
      { device: 'seed-1', name: 'energy', unit: 'Wh', t: t * 1000, kind: 'sum', v: 1234.5 },
      { device: 'seed-1', name: 'mode', t: t * 1000, kind: 'text', v: 'eco' },
      { device: 'seed-1', name: 'door', t: t * 1000, kind: 'flag', v: true },
    ]));
    // Seeding is not news: no events frame repeats the stored readings.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(live.seen.some((f) => f.type === 'events' && f.readings?.some((r: Frame) => r.device === 'seed-1'))).toBe(false);
    await live.close();
  });
});
