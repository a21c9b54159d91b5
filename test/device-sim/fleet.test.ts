/**
 * device-sim against a real hub and the suite's real influxd: what the
 * simulator says it delivered is exactly what the hub stored, also across
 * forced disconnects, and zombies are found by the hub's liveness sweep.
 */
import { mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ChaosRole } from '../../device-sim/chaos.js';
import { Fleet, runFleet, withDefaults, type FleetOptions } from '../../device-sim/index.js';
import { ENROLLMENT_KEY, startHub, type TestHub } from '../support/hub.js';
import { sleep, waitFor } from '../support/wait.js';

const fast = { baseMs: 50, capMs: 200, rebootPauseMs: 100, retryMs: 100 };
/** How long to wait for something the hub or the fleet must do: a ceiling for a busy machine, not a speed claim. */
const CEILING_MS = 15_000;
let hub: TestHub | undefined;
afterEach(async () => {
  await hub?.close();
  hub = undefined;
});

/** Readings the hub accepted, counted on its bus: a message stored twice would count twice. */
function countAccepted(h: TestHub): { readings: number } {
  const counter = { readings: 0 };
  h.app.bus.on('telemetry.accepted', (e) => { counter.readings += e.readings.length; });
  return counter;
}

/** Points in InfluxDB for devices with this prefix (value and sum fields: the mixed profile has both). */
async function storedPoints(h: TestHub, prefix: string): Promise<number> {
  const rows = await h.db.query(`SELECT count("value") AS v, count("sum") AS s FROM telemetry WHERE "device" =~ /^${prefix}/`);
  return rows.reduce((n, r) => n + Number(r.v ?? 0) + Number(r.s ?? 0), 0);
}

function options(h: TestHub, overrides: Partial<FleetOptions>): FleetOptions {
  return { ...withDefaults({ url: h.deviceUrl, enrollmentKey: ENROLLMENT_KEY, ramp: 1_000, ...overrides }), timing: fast, drainMs: 5_000 };
}

describe('device-sim against a real hub', () => {
  it('20 devices: every message sent is acknowledged and stored exactly once; the summary JSON says so', async () => {
    hub = await startHub();
    const accepted = countAccepted(hub);
    let online = 0;
    let closedByDevice = 0;
    hub.app.bus.on('device.online', () => online++);
    hub.app.bus.on('device.offline', (e) => { if (e.reason === 'closed by device') closedByDevice++; });
    const file = path.join(await mkdtemp(path.join(os.tmpdir(), 'sim-')), 'summary.json');

    const summary = await runFleet(options(hub, { devices: 20, prefix: 'all-', rate: 4, batch: 3, duration: 2.5, summary: file }));

    const t = summary.telemetry;
    // Enough traffic for the exactness claims below to mean something (one message per device);
    // how many more a 2.5 s run sends depends on the machine's speed, so it is not asserted.
    expect(t.sent).toBeGreaterThanOrEqual(20);
    expect(t.acknowledged).toEqual({ 0: t.sent });
    expect(t.stored).toBe(t.sent);
    expect(t.unacknowledged).toBe(0);
    expect(t.records).toBe(t.sent * 3);
    expect(accepted.readings).toBe(t.records);
    expect(await storedPoints(hub, 'all-')).toBe(t.records);
    expect(summary.connections).toMatchObject({ connects: 20, connectedAtEnd: 20, disconnects: { 1000: 20 } });
    expect(online).toBe(20);
    await waitFor(() => closedByDevice === 20, { timeoutMs: CEILING_MS, what: 'offline events' });
    expect(summary.latencyMs.count).toBe(t.sent);
    expect(summary.latencyMs.p50).toBeGreaterThan(0);
    expect(summary.latencyMs.p99).toBeGreaterThanOrEqual(summary.latencyMs.p50);
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual(summary);
    const listed = await hub.api('GET', '/v1/devices?prefix=all-&limit=100');
    expect(listed.body.items ?? listed.body.devices ?? listed.body).toHaveLength(20);
  });

  it('forced disconnects with messages in flight: everything is resent and nothing is stored twice', async () => {
    hub = await startHub();
    const accepted = countAccepted(hub);
    const fleet = new Fleet(options(hub, { devices: 8, prefix: 'drop-', rate: 20, batch: 2, profile: 'energy-meter' })).start();
    const rounds = 6;
    let dropped = 0;
    let kicked = 0;
    for (let round = 0; round < rounds; round++) {
      // Each round starts with everyone back (reconnects take as long as the machine makes them) and,
      // 100 ms later, a message due on every device (20/s, the first one within 50 ms of connecting).
      await waitFor(() => fleet.snapshot().connected === 8, { timeoutMs: CEILING_MS, what: `all connected, round ${round}` });
      await sleep(100);
      fleet.tick(); // sends what is due; no ACK can arrive before this turn ends
      // Half the fleet loses TCP from the device side...
      for (const d of fleet.devices.slice(0, 4)) if (d.state === 'open' && d.window.length > 0) { d.drop(); dropped++; }
      // ...and one of the other half is closed by the hub, restart-style (1012), also with messages in flight.
      const victim = fleet.devices[4 + (round % 4)]!;
      if (victim.state === 'open' && hub.app.gateway.kick(victim.id, 1012, 'restarting')) kicked++;
    }
    await sleep(500);
    await fleet.stop();
    const t = fleet.summary().telemetry;

    // How many of the 4 x rounds drops caught a message in flight depends on how fast ACKs come back;
    // the test means something as long as one did.
    expect(dropped).toBeGreaterThan(0);
    expect(t.resent).toBeGreaterThanOrEqual(dropped);
    expect(t.unacknowledged).toBe(0);
    // Resends of messages the hub had already stored came back as duplicates (ACK 1), not as new data.
    expect(t.acknowledged[1]).toBeGreaterThan(0);
    expect((t.acknowledged[0] ?? 0) + (t.acknowledged[1] ?? 0)).toBe(t.sent);
    expect(accepted.readings).toBe(t.records);
    expect(await storedPoints(hub, 'drop-')).toBe(t.records);
    expect(kicked).toBe(rounds);
    expect(fleet.summary().connections.disconnects[1012]).toBe(kicked);
  });

  it('zombies are reported offline by the hub (ping-timeout), and only zombies', async () => {
    // 1 s, not less: a healthy device's pong must not lose a race with a busy machine. How fast the
    // hub finds a zombie is asserted in pings by test/conformance (section 4), not in ms here.
    const pingMs = 1_000;
    hub = await startHub({ PULSEWIRE_PING_INTERVAL_MS: String(pingMs) });
    const timedOut = new Map<string, number>();
    hub.app.bus.on('device.offline', (e) => { if (e.reason === 'ping-timeout' && !timedOut.has(e.deviceId)) timedOut.set(e.deviceId, e.at); });
    const fleet = new Fleet(options(hub, { devices: 8, prefix: 'zomb-', rate: 2, zombies: 50 })).start();
    const zombies = fleet.devices.filter((d) => d.roles & ChaosRole.ZOMBIE).map((d) => d.id);
    expect(zombies).toHaveLength(4);

    await waitFor(() => zombies.every((id) => timedOut.has(id)), { what: 'every zombie timed out', timeoutMs: CEILING_MS });
    await sleep(2 * pingMs); // room for a healthy device to be (wrongly) timed out too
    await fleet.stop();

    expect([...timedOut.keys()].sort()).toEqual([...zombies].sort());
    expect(fleet.summary().connections.disconnects[1006]).toBeGreaterThanOrEqual(4);
    expect(fleet.summary().telemetry.unacknowledged).toBe(0);
  });

  it('flapping and malformed devices: 1007 closes counted as firmware errors, still nothing lost or doubled', async () => {
    hub = await startHub();
    const accepted = countAccepted(hub);
    const summary = await runFleet({
      ...options(hub, { devices: 9, prefix: 'chaos-', rate: 10, batch: 2, duration: 2.5, flap: 34, malformed: 34 }),
      chaosMeanMs: { flap: 400, malformed: 400 },
    });
    const t = summary.telemetry;
    expect(summary.chaos).toMatchObject({ flapping: 3, malformed: 3 });
    expect(summary.chaos.flaps).toBeGreaterThan(0);
    expect(summary.chaos.malformedSent).toBeGreaterThan(0);
    expect(summary.firmwareErrors).toBe(summary.connections.disconnects[1007]);
    expect(summary.firmwareErrors).toBeGreaterThan(0);
    expect(t.unacknowledged).toBe(0);
    expect(t.stored).toBe(t.sent);
    expect(accepted.readings).toBe(t.records);
    expect(await storedPoints(hub, 'chaos-')).toBe(t.records);
  });

  it('--clock-skew beyond the hub window: every message is answered with ACK 3 and dropped, none stored', async () => {
    hub = await startHub();
    const summary = await runFleet(options(hub, { devices: 3, prefix: 'skew-', rate: 5, duration: 1.5, clockSkew: 600 }));
    const t = summary.telemetry;
    expect(t.sent).toBeGreaterThanOrEqual(3); // at least one per device; the rest depends on the machine's speed
    expect(t.acknowledged).toEqual({ 3: t.sent });
    expect(t.dropped).toBe(t.sent);
    expect(t.stored).toBe(0);
    expect(await storedPoints(hub, 'skew-')).toBe(0);
  });
});
