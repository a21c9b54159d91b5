/**
 * The hub killed with SIGKILL in the middle of a stream and restarted on the
 * same data dir: every acknowledged reading reaches InfluxDB once, the
 * device's resent window is recognised byte for byte, and resends of
 * messages acknowledged before the crash get ACK 1.
 *
 * The stream uses relative times (resolved at receipt), so a reading stored
 * twice would show up as a second row with the same value.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/storage/influxd-config.js';
import { ENROLLMENT_KEY, startHub } from '../support/hub.js';
import { spawnHubProcess } from '../support/hub-process.js';
import { freshDatabase, type FreshDatabase } from '../support/influx.js';
import { Streamer } from '../support/streamer.js';
import { TestDevice } from '../support/device-client.js';
import { Fleet, withDefaults } from '../../device-sim/index.js';
import { sleep } from '../support/wait.js';

let dataDir: string;
let db: FreshDatabase;
let port: number;
let hub: ChildProcess | undefined;

/** The hub as an operator runs it (main.ts from sources via tsx), on a fixed port and data dir. */
async function startHubProcess(): Promise<ChildProcess> {
  const child = spawnHubProcess({
    port, dataDir, env: { PULSEWIRE_INFLUX_URL: db.url, PULSEWIRE_ENROLLMENT_KEY: ENROLLMENT_KEY }, stdio: ['ignore', 'ignore', 'inherit'],
  });
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`hub exited with ${child.exitCode}`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) return child;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) throw new Error('hub did not start');
    await sleep(100);
  }
}

async function killHard(child: ChildProcess): Promise<void> {
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'pulsewire-crash-'));
  db = await freshDatabase('crash');
  port = await freePort();
});
afterAll(async () => {
  if (hub && hub.exitCode === null) await killHard(hub);
  await db?.drop();
  await rm(dataDir, { recursive: true, force: true });
});

describe('hub crash (kill -9) and restart on the same data dir', () => {
  it('delivers every acknowledged reading exactly once and recognises resends across the crash', async () => {
    hub = await startHubProcess();
    const device = new Streamer('crash-1');
    await device.connect(`ws://127.0.0.1:${port}/v1/device`);
    device.start(2);
    while (device.accepted.size < 300) await sleep(20);
    await killHard(hub);
    device.stop();
    const ackedBeforeCrash = [...device.accepted].sort((a, b) => a - b);
    const inFlightAtCrash = device.unacked;
    await device.socketClosed;

    hub = await startHubProcess();
    // Reconnecting resends the unacknowledged window, byte for byte.
    await device.connect(`ws://127.0.0.1:${port}/v1/device`);
    await device.waitAllAccepted(10_000);
    // A device that lost ACKs just before the crash resends those too: the durable window knows them.
    const resent = ackedBeforeCrash.slice(-5);
    const acksBefore = device.acks.length;
    for (const seq of resent) device.resendRaw(device.frame(seq)!);
    while (device.acks.length < acksBefore + resent.length) await sleep(10);
    expect(device.acks.slice(acksBefore).map((a) => [a.seq, a.code])).toEqual(resent.map((seq) => [seq, 1]));

    device.start(2, device.sent + 100);
    while (device.sent < ackedBeforeCrash.length + inFlightAtCrash + 100) await sleep(20);
    device.stop();
    await device.waitAllAccepted(10_000);
    await device.close();

    const expected = Array.from({ length: device.sent }, (_, i) => i);
    const deadline = Date.now() + 15_000;
    let values: number[] = [];
    while (Date.now() < deadline) {
      values = (await db.query<{ time: number; value: number }>(`SELECT "value" FROM "telemetry" WHERE "device" = 'crash-1'`)).map((r) => r.value);
      if (values.length >= expected.length) break;
      await sleep(100);
    }
    expect(values.sort((a, b) => a - b)).toEqual(expected);
  });
});

describe('hub crash under a device-sim fleet', () => {
  it('loses nothing the fleet was told was stored, and answers its resends after the restart', async () => {
    if (hub && hub.exitCode === null) await killHard(hub); // the previous test's hub holds the port
    hub = await startHubProcess();
    const fleet = new Fleet({
      ...withDefaults({
        url: `ws://127.0.0.1:${port}/v1/device`, enrollmentKey: ENROLLMENT_KEY, devices: 10, prefix: 'simcrash-',
        profile: 'thermostat', rate: 100, batch: 2, ramp: 1000,
      }),
      timing: { baseMs: 50, capMs: 300 },
      drainMs: 10_000,
    }).start();
    while ((fleet.stats.acks[0] ?? 0) < 500) await sleep(5);
    // Kill while messages are in flight, so the fleet has something to resend. The hub is
    // frozen first: a running hub could still ACK the in-flight messages between this check
    // and the kill (CI saw `resent` 0 that way); a frozen one cannot.
    hub.kill('SIGSTOP');
    const frozenUntil = Date.now() + 10_000;
    while (fleet.snapshot().inFlight < 3 && Date.now() < frozenUntil) await sleep(5);
    expect(fleet.snapshot().inFlight).toBeGreaterThanOrEqual(3);
    await killHard(hub);
    await sleep(300);
    hub = await startHubProcess();
    const ackedAtRestart = fleet.stats.sent;
    while (fleet.stats.sent < ackedAtRestart + 200) await sleep(20);
    await fleet.stop();
    const summary = fleet.summary();

    expect(summary.telemetry.unacknowledged).toBe(0);
    expect(summary.telemetry.resent).toBeGreaterThan(0);
    const acked = (summary.telemetry.acknowledged[0] ?? 0) + (summary.telemetry.acknowledged[1] ?? 0);
    expect(acked).toBe(summary.telemetry.sent);
    // Thermostat records all carry `value`; absolute times make each reading a distinct point.
    await expect.poll(async () => {
      const rows = await db.query(`SELECT count("value") FROM "telemetry" WHERE "device" =~ /^simcrash-/`);
      return Number(rows[0]?.['count'] ?? 0);
    }, { timeout: 15_000, interval: 200 }).toBe(summary.telemetry.sent * 2);
  }, 60_000);
});

describe('durable duplicate window', () => {
  it('answers ACK 1 to a resend after a graceful restart of the hub', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pulsewire-window-'));
    const database = await freshDatabase('window');
    try {
      const frame = '830105' + '81a20061780218' + '2a'; // [1, 5, [{n: "x", v: 42}]]
      let first = await startHub({}, { dataDir: dir, database });
      let device = await TestDevice.connect(first.deviceUrl, { id: 'win-1' });
      device.sendHex(frame);
      expect(await device.next()).toEqual({ type: 2, seq: 5 });
      await device.close();
      await first.close();

      first = await startHub({}, { dataDir: dir, database });
      device = await TestDevice.connect(first.deviceUrl, { id: 'win-1' });
      device.sendHex(frame);
      expect(await device.next()).toEqual({ type: 2, seq: 5, code: 1 });
      await device.close();
      expect(await first.db.query(`SELECT count("value") FROM "telemetry" WHERE "device" = 'win-1'`)).toMatchObject([{ count: 1 }]);
      await first.close();
    } finally {
      await database.drop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('graceful shutdown with InfluxDB down', () => {
  it('keeps what it could not deliver in the spool, and the next start delivers it', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pulsewire-shutdown-'));
    const database = await freshDatabase('shutdown');
    try {
      const down = await startHub({ PULSEWIRE_SHUTDOWN_TIMEOUT_MS: '400' }, { dataDir: dir, database, influxUrl: `http://127.0.0.1:${await freePort()}/x` });
      const device = new Streamer('shutdown-1', { absoluteFrom: Math.floor(Date.now() / 1000) - 10 });
      await device.connect(down.deviceUrl);
      for (let i = 0; i < 5; i++) device.sendNew();
      await device.waitAllAccepted(5000);
      const closing = Date.now();
      await down.close();
      expect(Date.now() - closing).toBeLessThan(3000);

      const up = await startHub({}, { dataDir: dir, database });
      // Five messages plus the device's online and offline status points.
      expect(up.app.spool.stats.entries).toBe(7);
      const rows = await up.db.query(`SELECT "value" FROM "telemetry" WHERE "device" = 'shutdown-1'`);
      expect(rows.map((r) => r['value'])).toEqual([0, 1, 2, 3, 4]);
      const status = await up.db.query(`SELECT "online", "reason" FROM "device_status" WHERE "device" = 'shutdown-1'`);
      expect(status.map((r) => [r['online'], r['reason']])).toEqual([[true, 'connected'], [false, 'hub shutdown']]);
      await up.close();
    } finally {
      await database.drop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
