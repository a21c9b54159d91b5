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
import { TcpRelay } from '../support/ports.js';
import { Streamer, type AckRecord } from '../support/streamer.js';
import { waitFor } from '../support/wait.js';

const DATABASE = 'outage';

let influxDir: string;
let influxd: ManagedInfluxd;
/**
 * InfluxDB's address for the hubs and for this file: the same while influxd is stopped and
 * started again on new ports (a port of its own freed for an outage could be taken meanwhile).
 */
let relay: TcpRelay;
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

const acksAfter = (device: Streamer, at: number): AckRecord[] => device.acks.filter((a) => a.at > at);

beforeAll(async () => {
  influxDir = await mkdtemp(path.join(os.tmpdir(), 'pulsewire-outage-influxd-'));
  influxd = await startManagedInfluxd({ dataDir: influxDir });
  relay = await TcpRelay.start(influxd.httpPort);
  influx = connectInflux(relay.url(`/${DATABASE}`), { requestTimeoutMs: 2000 });
  await influx.ensureDatabase();
});
afterAll(async () => {
  await influxd?.stop();
  await relay?.close();
  await rm(influxDir, { recursive: true, force: true });
});

/**
 * Stops influxd (connections to it refused) until the returned function starts a new one on
 * the same data dir: an outage with data kept, as long as the test needs it to be.
 */
async function takeInfluxdDown(): Promise<() => Promise<void>> {
  relay.target = undefined;
  relay.cutAll();
  await influxd.stop();
  return async () => {
    influxd = await startManagedInfluxd({ dataDir: influxDir });
    relay.target = influxd.httpPort;
  };
}

describe('influxd outages during a steady stream', () => {
  let hub: TestHub;
  beforeAll(async () => {
    hub = await startHub({ PULSEWIRE_SHUTDOWN_TIMEOUT_MS: '2000' }, { influxUrl: relay.url(`/${DATABASE}`) });
  });
  afterAll(async () => { await hub?.close(); });

  it('keeps ACKing while influxd is killed (supervised restart) and while it is down past the writer\'s retry window, and stores every reading once', async () => {
    const device = new Streamer('outage-kill', { absoluteFrom: Math.floor(Date.now() / 1000) - 60 });
    await device.connect(hub.deviceUrl);
    device.start(10);
    await waitFor(() => device.accepted.size >= 20, { timeoutMs: 20_000, what: 'a stream before the crash' });

    // Killed: its supervisor restarts it on the same port. The relay stays shut until the hub
    // has ACKed more, so the check does not race the restart.
    const port = influxd.httpPort;
    relay.target = undefined;
    relay.cutAll();
    process.kill(influxd.pid!, 'SIGKILL');
    const killedAt = Date.now();
    await waitFor(() => acksAfter(device, killedAt).length >= 10, { timeoutMs: 20_000, what: 'ACKs while influxd is dead' });
    expect(acksAfter(device, killedAt).every((a) => a.code === 0)).toBe(true);
    await waitFor(() => influxd.restarts === 1, { timeoutMs: 20_000, what: 'supervised restart of influxd' });
    relay.target = port;
    await waitFor(influxUp, { timeoutMs: 30_000, what: 'supervised influxd back', everyMs: 50 });

    // A long outage: past the writer's own 5 s retry window (the drainer counts a retry only when
    // the writer gave up), so the drainer has to keep trying.
    const retriesBefore = hub.app.drainer.stats.retries;
    const bringBack = await takeInfluxdDown();
    const outageStart = Date.now();
    try {
      await waitFor(() => hub.app.drainer.stats.retries > retriesBefore && acksAfter(device, outageStart).length >= 50, {
        timeoutMs: 40_000, what: 'the drainer retrying after the writer gave up, and 50 ACKs meanwhile', everyMs: 50,
      });
      // The undelivered entries of that failed write were spooled before it began, 5 s ago.
      expect(hub.app.spool.stats.entries).toBeGreaterThan(0);
      expect(hub.app.spool.stats.oldestAgeSeconds).toBeGreaterThan(1);
      expect(acksAfter(device, outageStart).every((a) => a.code === 0)).toBe(true);
    } finally {
      await bringBack();
    }

    const backAt = Date.now();
    await waitFor(() => acksAfter(device, backAt).length >= 10, { timeoutMs: 20_000, what: 'ACKs after the outage' });
    device.stop();
    await expectExactlyOnce(hub, device);
    const metrics = await hub.api('GET', '/metrics');
    expect(metrics.body).toMatch(/pulsewire_spool_drain_retries_total [1-9]/);
    expect(metrics.body).toMatch(/pulsewire_spool_entries 0/);
    await device.close();
  }, 120_000);

  it('keeps ACKing while influxd is frozen (SIGSTOP) and delivers everything after SIGCONT', async () => {
    const device = new Streamer('outage-freeze', { absoluteFrom: Math.floor(Date.now() / 1000) - 30 });
    await device.connect(hub.deviceUrl);
    device.start(10);
    await waitFor(() => device.accepted.size >= 20, { timeoutMs: 20_000, what: 'a stream before the freeze' });
    const pid = influxd.pid!;
    process.kill(pid, 'SIGSTOP');
    const frozenAt = Date.now();
    try {
      await waitFor(() => acksAfter(device, frozenAt).length >= 60, { timeoutMs: 30_000, what: 'ACKs while influxd is frozen' });
      expect(acksAfter(device, frozenAt).every((a) => a.code === 0)).toBe(true);
      // Acknowledged while nothing could be delivered: still spooled.
      expect(hub.app.spool.stats.entries).toBeGreaterThan(20);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    const thawedAt = Date.now();
    await waitFor(() => acksAfter(device, thawedAt).length >= 10, { timeoutMs: 20_000, what: 'ACKs after SIGCONT' });
    device.stop();
    await expectExactlyOnce(hub, device);
    await device.close();
  }, 90_000);
});

describe('a full spool while InfluxDB is down', () => {
  it('answers ACK 4 (and readiness says why), loses nothing, and ACKs 0 again once the spool drains', async () => {
    const hub = await startHub(
      { PULSEWIRE_SPOOL_MAX_BYTES: '4096', PULSEWIRE_SHUTDOWN_TIMEOUT_MS: '2000' },
      { influxUrl: relay.url(`/${DATABASE}`) },
    );
    try {
      const device = new Streamer('spool-full', { absoluteFrom: Math.floor(Date.now() / 1000) - 10 });
      await device.connect(hub.deviceUrl);
      // Down until the full spool was seen: the outage cannot end before the test looked.
      const bringBack = await takeInfluxdDown();
      let refused: AckRecord;
      try {
        expect(await influxUp()).toBe(false);
        device.start(5);
        await waitFor(() => device.acks.some((a) => a.code === 4), { timeoutMs: 20_000, what: 'an ACK 4', everyMs: 50 });
        device.stop();
        refused = device.acks.find((a) => a.code === 4)!;
        expect(hub.app.spool.full).toBe(true);
        const ready = await fetch(`${hub.baseUrl}/readyz`);
        expect(ready.status).toBe(503);
        expect(await ready.json()).toMatchObject({ checks: { spool: false } });
        expect((await hub.api('GET', '/metrics')).body).toMatch(/pulsewire_spool_full 1/);
        expect(hub.app.spool.stats.bytes).toBeLessThanOrEqual(4096);
      } finally {
        await bringBack();
      }

      await waitFor(() => !hub.app.spool.full, { timeoutMs: 30_000, what: 'spool has room again', everyMs: 50 });
      // The refused messages were kept by the device and are now accepted on resend.
      await expectExactlyOnce(hub, device);
      expect(device.acks.filter((a) => a.seq === refused.seq).map((a) => a.code)).toContain(0);
      const fresh = device.sendNew();
      await device.waitAllAccepted(20_000);
      expect(device.acks.find((a) => a.seq === fresh)?.code).toBe(0);
      expect((await fetch(`${hub.baseUrl}/readyz`)).status).toBe(200);
      await device.close();
    } finally {
      await hub.close();
    }
  }, 90_000);
});
