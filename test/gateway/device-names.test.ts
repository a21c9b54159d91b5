/**
 * The per-device names budget (PULSEWIRE_MAX_NAMES_PER_DEVICE) and the hub's
 * series cap (PULSEWIRE_MAX_SERIES): durable across restarts, following a
 * device from node to node, and given back when a message is not stored.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { DeviceRuntime } from '../../src/gateway/device-runtime.js';
import { TelemetryIntake } from '../../src/gateway/telemetry-intake.js';
import { EventBus } from '../../src/events/bus.js';
import { encodeTelemetry } from '../../src/protocol/encode.js';
import { senmlRecord } from '../../src/protocol/senml-labels.js';
import { Spool } from '../../src/storage/spool.js';
import { TestDevice } from '../support/device-client.js';
import { freshDatabase } from '../support/influx.js';
import { restartableHub, startHub, type TestHub } from '../support/hub.js';
import { uniqueNamespace } from '../support/nats.js';

const pack = (...names: string[]) => names.map((n, i) => senmlRecord({ n, v: i }));

/** Sends one TELEMETRY and returns its ACK code (0 when absent) and reason. */
async function send(device: TestDevice, seq: number, ...names: string[]): Promise<{ code: number; reason?: string }> {
  device.send(encodeTelemetry(seq, pack(...names)));
  for (;;) {
    const message = await device.next();
    if (message.type === 2 && message.seq === seq) return { code: message.code ?? 0, ...(message.reason ? { reason: message.reason } : {}) };
  }
}

describe('names per device and series per hub, across restarts', () => {
  let hubs: Awaited<ReturnType<typeof restartableHub>>;
  beforeAll(async () => { hubs = await restartableHub('names'); });
  afterAll(async () => { await hubs?.close(); });

  it('a device at its names budget stays there after a restart (the budget used to start again)', async () => {
    const env = { PULSEWIRE_MAX_NAMES_PER_DEVICE: '3' };
    let hub = await hubs.start(env);
    let device = await TestDevice.connect(hub.deviceUrl, { id: 'named-1' });
    expect(await send(device, 1, 'a', 'b')).toEqual({ code: 0 });
    expect(await send(device, 2, 'c')).toEqual({ code: 0 });
    expect(await send(device, 3, 'd')).toEqual({ code: 5, reason: 'too many distinct names for this device: at most 3 distinct names per device' });
    await device.close();
    await hub.close();

    hub = await hubs.start(env);
    device = await TestDevice.connect(hub.deviceUrl, { id: 'named-1' });
    expect(await send(device, 4, 'e')).toMatchObject({ code: 5 });
    expect(await send(device, 5, 'a', 'b', 'c')).toEqual({ code: 0 });
    await device.close();
    expect((await hub.app.metricsText()).text).toMatch(/pulsewire_device_limits_hit_total\{limit="names"\} 1\b/);
    await hub.close();
  });

  it('past PULSEWIRE_MAX_SERIES a new series gets ACK 5 naming it, known ones are stored, and the count survives a restart', async () => {
    const env = { PULSEWIRE_MAX_SERIES: '4' };
    let hub = await hubs.start(env);
    // named-1 brought 3 series (a, b, c) in the test above: one place is left.
    const one = await TestDevice.connect(hub.deviceUrl, { id: 'series-1' });
    expect(await send(one, 1, 'x')).toEqual({ code: 0 });
    expect(await send(one, 2, 'y')).toEqual({ code: 5, reason: 'hub at its series limit, no new series: at most 4 (PULSEWIRE_MAX_SERIES)' });
    expect(await send(one, 3, 'x')).toEqual({ code: 0 });
    expect((await hub.app.metricsText()).text).toMatch(/pulsewire_series 4\b/);
    await one.close();
    await hub.close();

    hub = await hubs.start(env);
    const two = await TestDevice.connect(hub.deviceUrl, { id: 'series-2' });
    expect(await send(two, 1, 'x')).toMatchObject({ code: 5 }); // series-2/x is a new series
    expect((await hub.app.metricsText()).text).toMatch(/pulsewire_device_limits_hit_total\{limit="series"\} 1\b/);
    await two.close();
    await hub.close();
  });
});

describe('names reserved by a message that is not stored are given back', () => {
  let dir: string;
  let spool: Spool;
  afterEach(async () => {
    await spool?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('a full spool answers ACK 4 and the message\'s new names count neither for the device nor for the hub', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pulsewire-names-'));
    spool = Spool.open(dir, { maxBytes: 400, windowSize: 128 });
    const limits = { maxRecordsPerPack: 100, maxFutureSeconds: 300, maxPastSeconds: 86_400, maxNamesPerDevice: 2, maxSeries: 10 };
    const intake = new TelemetryIntake({
      limits, sink: spool, series: spool.names, bus: new EventBus(),
      observer: { ack: () => undefined, readings: () => undefined }, nowUs: () => Date.now() * 1000,
    });
    const runtime = new DeviceRuntime('full-1', (id) => spool.names.load(id));
    expect(await intake.accept(runtime, 1, pack('a'), 1)).toEqual({ code: 0 });
    // Larger than what is left of 400 bytes.
    const big = Array.from({ length: 20 }, (_, i) => senmlRecord({ n: 'b', v: i, t: -i }));
    expect(await intake.accept(runtime, 2, big, 2)).toMatchObject({ code: 4 });
    expect([...runtime.names]).toEqual(['a']);
    expect(spool.names.series).toBe(1);
    expect(spool.names.load('full-1')).toEqual(['a']);
  });
});

describe('in cluster mode the names budget follows the device', () => {
  const hubs: TestHub[] = [];
  let a: TestHub;
  let b: TestHub;
  beforeAll(async () => {
    const cluster = uniqueNamespace('n');
    const database = await freshDatabase('names-cluster');
    const env = (node: string) => ({
      PULSEWIRE_NATS_URL: inject('natsUrl'), PULSEWIRE_CLUSTER_NAME: cluster, PULSEWIRE_NODE_ID: node, PULSEWIRE_NODE_LEASE_MS: '1500',
      PULSEWIRE_MAX_NAMES_PER_DEVICE: '3',
    });
    a = await startHub(env('node-a'), { database });
    hubs.push(a);
    b = await startHub(env('node-b'), { database });
    hubs.push(b);
  });
  afterAll(async () => { for (const hub of hubs.reverse()) await hub.close(); });

  it('names used on one node count on the other, after a disconnect and after a takeover', async () => {
    const first = await TestDevice.connect(a.deviceUrl, { id: 'roamer-1' });
    expect(await send(first, 1, 'a', 'b')).toEqual({ code: 0 });
    await first.close();
    // Reconnects through the other node: its two names came along.
    const second = await TestDevice.connect(b.deviceUrl, { id: 'roamer-1' });
    expect(await send(second, 2, 'c')).toEqual({ code: 0 });
    expect(await send(second, 3, 'd')).toMatchObject({ code: 5 });
    // Taken over by the first node while connected to the second.
    const third = await TestDevice.connect(a.deviceUrl, { id: 'roamer-1' });
    expect(await send(third, 4, 'a', 'b', 'c')).toEqual({ code: 0 });
    expect((await second.closed).code).toBe(4000);
    expect(await send(third, 5, 'e')).toMatchObject({ code: 5 });
    await third.close();
  });
});
