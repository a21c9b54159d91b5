/**
 * Issue 5 against a real influxd that dies, freezes and fills the spool:
 * devices keep getting ACK 0 during the outage (the spool holds their
 * readings), and afterwards InfluxDB holds every acknowledged reading once.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectInflux, type InfluxConnection } from '../../src/storage/influx-connection.js';
import { startManagedInfluxd, type ManagedInfluxd } from '../../src/storage/managed-influxd.js';
import { spoolDrained, startHub, type TestHub } from '../support/hub.js';
import { Streamer } from '../support/streamer.js';
import { sleep, waitFor } from '../support/wait.js';

const DATABASE = 'outage';

let influxDir: string;
let influxd: ManagedInfluxd;
let influx: InfluxConnection;

/** The values of device `id` in InfluxDB (message i stored value i), sorted. */
async function storedValues(id: string): Promise<number[]> {
  const rows = await influx.influx.query<{ value: number }>('SELECT "value" FROM "telemetry" WHERE "device" = $id', { placeholders: { id } });
  return rows.map((r) => r.value).sort((a, b) => a - b);
}

async function influxUp(): Promise<boolean> {
  return influx.ping(500);
}

/** Every message 0..n-1 acknowledged, the spool empty, and InfluxDB holding each value exactly once. */
async function expectExactlyOnce(hub: TestHub, device: Streamer): Promise<void> {
  await device.waitAllAccepted(20_000);
  expect(await spoolDrained(hub.app, 30_000)).toBe(true);
  expect(await storedValues(device.id)).toEqual(Array.from({ length: device.sent }, (_, i) => i));
}

beforeAll(async () => {
  influxDir = await mkdtemp(path.join(os.tmpdir(), 'pulsewire-outage-influxd-'));
  influxd = await startManagedInfluxd({ dataDir: influxDir });
  influx = connectInflux(`${influxd.url}/${DATABASE}`, { requestTimeoutMs: 2000 });
  await influx.ensureDatabase();
});
afterAll(async () => {
  await influxd?.stop();
  await rm(influxDir, { recursive: true, force: true });
});

/** Stops influxd and starts a new one on the same data dir and port: a long outage with data kept. */
async function restartInfluxdAfter(downMs: number): Promise<void> {
  const port = influxd.httpPort;
  await influxd.stop();
  await sleep(downMs);
  influxd = await startManagedInfluxd({ dataDir: influxDir, httpPort: port });
}

describe('influxd outages during a steady stream', () => {
  let hub: TestHub;
  beforeAll(async () => {
    hub = await startHub({ PULSEWIRE_SHUTDOWN_TIMEOUT_MS: '2000' }, { influxUrl: `${influxd.url}/${DATABASE}` });
  });
  afterAll(async () => { await hub?.close(); });

  it('keeps ACKing while influxd is killed (supervised restart) and then down for 6 s, and stores every reading once', async () => {
    const device = new Streamer('outage-kill', { absoluteFrom: Math.floor(Date.now() / 1000) - 60 });
    await device.connect(hub.deviceUrl);
    device.start(10);
    await sleep(500);

    process.kill(influxd.pid!, 'SIGKILL');
    const killedAt = Date.now();
    await waitFor(influxUp, { timeoutMs: 20_000, what: 'supervised influxd back', everyMs: 50 });
    const acksDuringCrash = device.acks.filter((a) => a.at > killedAt + 50).length;
    expect(acksDuringCrash).toBeGreaterThan(0);

    // A long outage: longer than the writer's own 5 s retry window, so the drainer has to keep trying.
    const outageStart = Date.now();
    const restarted = restartInfluxdAfter(6000);
    await sleep(3000);
    expect(hub.app.spool.stats.entries).toBeGreaterThan(0);
    expect(hub.app.spool.stats.oldestAgeSeconds).toBeGreaterThan(1);
    await restarted;
    const outageAcks = device.acks.filter((a) => a.at > outageStart + 500 && a.at < outageStart + 6000);
    expect(outageAcks.length).toBeGreaterThan(50);
    expect(outageAcks.every((a) => a.code === 0)).toBe(true);

    await sleep(300);
    device.stop();
    await expectExactlyOnce(hub, device);
    expect(hub.app.drainer.stats.retries).toBeGreaterThan(0);
    const metrics = await hub.api('GET', '/metrics');
    expect(metrics.body).toMatch(/pulsewire_spool_drain_retries_total [1-9]/);
    expect(metrics.body).toMatch(/pulsewire_spool_entries 0/);
    await device.close();
  });

  it('keeps ACKing while influxd is frozen (SIGSTOP) and delivers everything after SIGCONT', async () => {
    const device = new Streamer('outage-freeze', { absoluteFrom: Math.floor(Date.now() / 1000) - 30 });
    await device.connect(hub.deviceUrl);
    device.start(10);
    await sleep(300);
    const pid = influxd.pid!;
    process.kill(pid, 'SIGSTOP');
    const frozenAt = Date.now();
    try {
      await sleep(3000);
      expect(hub.app.spool.stats.entries).toBeGreaterThan(20);
      const frozenAcks = device.acks.filter((a) => a.at > frozenAt + 200);
      expect(frozenAcks.length).toBeGreaterThan(50);
      expect(frozenAcks.every((a) => a.code === 0)).toBe(true);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await sleep(300);
    device.stop();
    await expectExactlyOnce(hub, device);
    await device.close();
  });
});

describe('a full spool while InfluxDB is down', () => {
  it('answers ACK 4 (and readiness says why), loses nothing, and ACKs 0 again once the spool drains', async () => {
    const hub = await startHub(
      { PULSEWIRE_SPOOL_MAX_BYTES: '4096', PULSEWIRE_SHUTDOWN_TIMEOUT_MS: '2000' },
      { influxUrl: `${influxd.url}/${DATABASE}` },
    );
    try {
      const device = new Streamer('spool-full', { absoluteFrom: Math.floor(Date.now() / 1000) - 10 });
      await device.connect(hub.deviceUrl);
      const restarted = restartInfluxdAfter(3000);
      await waitFor(async () => !(await influxUp()), { timeoutMs: 5000, what: 'influxd stopped', everyMs: 50 });
      device.start(5);
      await waitFor(() => device.acks.some((a) => a.code === 4), { timeoutMs: 5000, what: 'an ACK 4', everyMs: 50 });
      device.stop();
      const refused = device.acks.find((a) => a.code === 4)!;
      expect(hub.app.spool.full).toBe(true);
      const ready = await fetch(`${hub.baseUrl}/readyz`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({ checks: { spool: false } });
      expect((await hub.api('GET', '/metrics')).body).toMatch(/pulsewire_spool_full 1/);
      expect(hub.app.spool.stats.bytes).toBeLessThanOrEqual(4096);

      await restarted;
      await waitFor(() => !hub.app.spool.full, { timeoutMs: 20_000, what: 'spool has room again', everyMs: 50 });
      // The refused messages were kept by the device and are now accepted on resend.
      await expectExactlyOnce(hub, device);
      expect(device.acks.filter((a) => a.seq === refused.seq).map((a) => a.code)).toContain(0);
      const fresh = device.sendNew();
      await device.waitAllAccepted(5000);
      expect(device.acks.find((a) => a.seq === fresh)?.code).toBe(0);
      expect((await fetch(`${hub.baseUrl}/readyz`)).status).toBe(200);
      await device.close();
    } finally {
      await hub.close();
    }
  });
});
