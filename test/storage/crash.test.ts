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
import { REMEMBERED_SEQS } from '../../src/gateway/accepted-seqs.js';
import { Spool } from '../../src/storage/spool.js';
import { ENROLLMENT_KEY, startHub } from '../support/hub.js';
import { spawnHubProcess } from '../support/hub-process.js';
import { freshDatabase, type FreshDatabase } from '../support/influx.js';
import { TcpRelay, unreachable } from '../support/ports.js';
import { Streamer } from '../support/streamer.js';
import { TestDevice } from '../support/device-client.js';
import { Fleet, withDefaults } from '../../device-sim/index.js';
import { waitFor } from '../support/wait.js';

let dataDir: string;
let db: FreshDatabase;
/**
 * The devices' address of the hub, the same across its crash and restart. Each hub process
 * binds port 0 and the relay is pointed at it: a fixed port freed by the kill could be taken
 * by another worker before the restart binds it again.
 */
let relay: TcpRelay;
let hub: ChildProcess | undefined;

/** The port in the start banner ("Pulsewire hub on http://127.0.0.1:PORT"), printed once the hub listens. */
function listeningPort(child: ChildProcess, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let text = '';
    const done = (error?: Error, port?: number) => {
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      child.off('exit', onExit);
      child.stdout!.resume(); // keep draining: later output must not fill the pipe
      if (error) reject(error);
      else resolve(port!);
    };
    const onData = (chunk: Buffer) => {
      text += chunk.toString();
      const match = /Pulsewire hub on https?:\/\/[^:\s]+:(\d+)/.exec(text);
      if (match) done(undefined, Number(match[1]));
    };
    const onExit = (code: number | null) => done(new Error(`hub exited with ${code} before listening`));
    const timer = setTimeout(() => done(new Error(`hub did not listen within ${timeoutMs} ms`)), timeoutMs);
    child.stdout!.on('data', onData);
    child.once('exit', onExit);
  });
}

/** The hub as an operator runs it (main.ts from sources via tsx), on the same data dir each time, behind the relay. */
async function startHubProcess(): Promise<ChildProcess> {
  const child = spawnHubProcess({
    port: 0, dataDir, env: { PULSEWIRE_INFLUX_URL: db.url, PULSEWIRE_ENROLLMENT_KEY: ENROLLMENT_KEY }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  relay.target = await listeningPort(child, 30_000);
  return child;
}

async function killHard(child: ChildProcess): Promise<void> {
  // No new connections to the old port: once freed, it may belong to someone else.
  relay.target = undefined;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'pulsewire-crash-'));
  db = await freshDatabase('crash');
  relay = await TcpRelay.start();
});
afterAll(async () => {
  if (hub && hub.exitCode === null) await killHard(hub);
  await relay?.close();
  await db?.drop();
  await rm(dataDir, { recursive: true, force: true });
});

const deviceUrl = () => `ws://127.0.0.1:${relay.port}/v1/device`;

describe('hub crash (kill -9) and restart on the same data dir', () => {
  it('delivers every acknowledged reading exactly once and recognises resends across the crash', async () => {
    hub = await startHubProcess();
    const device = new Streamer('crash-1');
    await device.connect(deviceUrl());
    device.start(2);
    await waitFor(() => device.accepted.size >= 300, { timeoutMs: 20_000, what: '300 messages accepted before the crash' });
    await killHard(hub);
    device.stop();
    const ackedBeforeCrash = [...device.accepted].sort((a, b) => a - b);
    const inFlightAtCrash = device.unacked;
    await device.socketClosed;

    hub = await startHubProcess();
    // Reconnecting resends the unacknowledged window, byte for byte.
    await device.connect(deviceUrl());
    await device.waitAllAccepted(20_000);
    // A device that lost ACKs just before the crash resends those too: the durable window knows them.
    const resent = ackedBeforeCrash.slice(-5);
    const acksBefore = device.acks.length;
    for (const seq of resent) device.resendRaw(device.frame(seq)!);
    await waitFor(() => device.acks.length >= acksBefore + resent.length, { timeoutMs: 10_000, what: 'ACKs of the resends' });
    expect(device.acks.slice(acksBefore).map((a) => [a.seq, a.code])).toEqual(resent.map((seq) => [seq, 1]));

    device.start(2, device.sent + 100);
    await waitFor(() => device.sent >= ackedBeforeCrash.length + inFlightAtCrash + 100, { timeoutMs: 20_000, what: '100 messages after the restart' });
    device.stop();
    await device.waitAllAccepted(20_000);
    await device.close();

    const expected = Array.from({ length: device.sent }, (_, i) => i);
    // Acknowledged means spooled; the restarted hub's drainer delivers the rest a moment later.
    let values: number[] = [];
    await waitFor(async () => {
      values = (await db.query<{ time: number; value: number }>(`SELECT "value" FROM "telemetry" WHERE "device" = 'crash-1'`)).map((r) => r.value);
      return values.length >= expected.length;
    }, { timeoutMs: 30_000, what: 'every acknowledged reading in InfluxDB', everyMs: 100 });
    expect(values.sort((a, b) => a - b)).toEqual(expected);
  }, 90_000);
});

describe('hub crash under a device-sim fleet', () => {
  it('loses nothing the fleet was told was stored, and answers its resends after the restart', async () => {
    if (hub && hub.exitCode === null) await killHard(hub); // the previous test's hub holds the data dir
    hub = await startHubProcess();
    const fleet = new Fleet({
      ...withDefaults({
        url: deviceUrl(), enrollmentKey: ENROLLMENT_KEY, devices: 10, prefix: 'simcrash-',
        profile: 'thermostat', rate: 100, batch: 2, ramp: 1000,
      }),
      timing: { baseMs: 50, capMs: 300 },
      drainMs: 10_000,
    }).start();
    await waitFor(() => (fleet.stats.acks[0] ?? 0) >= 500, { timeoutMs: 30_000, what: '500 ACKs before the crash', everyMs: 5 });
    // Kill while messages are in flight, so the fleet has something to resend. The hub is
    // frozen first: a running hub could still ACK the in-flight messages between this check
    // and the kill (CI saw `resent` 0 that way); a frozen one cannot.
    hub.kill('SIGSTOP');
    await waitFor(() => fleet.snapshot().inFlight >= 3, { timeoutMs: 20_000, what: 'messages in flight at the frozen hub', everyMs: 5 });
    await killHard(hub);
    hub = await startHubProcess();
    const ackedAtRestart = fleet.stats.sent;
    await waitFor(() => fleet.stats.sent >= ackedAtRestart + 200, { timeoutMs: 30_000, what: '200 messages after the restart' });
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
    }, { timeout: 30_000, interval: 200 }).toBe(summary.telemetry.sent * 2);
  }, 120_000);
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
    const nowhere = await unreachable();
    try {
      const down = await startHub({ PULSEWIRE_SHUTDOWN_TIMEOUT_MS: '400' }, { dataDir: dir, database, influxUrl: nowhere.url('/x') });
      const device = new Streamer('shutdown-1', { absoluteFrom: Math.floor(Date.now() / 1000) - 10 });
      await device.connect(down.deviceUrl);
      for (let i = 0; i < 5; i++) device.sendNew();
      await device.waitAllAccepted(20_000);
      // Closing resolves although nothing can be delivered (the drainer's share of the shutdown
      // bound is unit-tested in spool.test.ts, on a write that never returns).
      await down.close();
      // Read before the next hub starts: its drainer begins delivering at once.
      const left = Spool.open(path.join(dir, 'spool'), { maxBytes: 1 << 30, windowSize: REMEMBERED_SEQS });
      // Five messages plus the device's online and offline status points.
      expect(left.stats).toMatchObject({ entries: 7, points: 7 });
      await left.close();

      const up = await startHub({}, { dataDir: dir, database });
      const rows = await up.db.query(`SELECT "value" FROM "telemetry" WHERE "device" = 'shutdown-1'`);
      expect(rows.map((r) => r['value'])).toEqual([0, 1, 2, 3, 4]);
      const status = await up.db.query(`SELECT "online", "reason" FROM "device_status" WHERE "device" = 'shutdown-1'`);
      expect(status.map((r) => [r['online'], r['reason']])).toEqual([[true, 'connected'], [false, 'hub shutdown']]);
      await up.close();
    } finally {
      await nowhere.release();
      await database.drop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
