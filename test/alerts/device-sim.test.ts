/**
 * Alert rules against device-sim's thermostats on a real hub (each names its
 * readings `<deviceId>/temperature`; one rule on `temperature` serves all): a threshold
 * rule fires for every device from its readings and resolves from its
 * readings once the threshold is moved above them; a staleness rule fires
 * for every device once the fleet stops, and resolves when it comes back.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Fleet, withDefaults, type FleetOptions } from '../../device-sim/index.js';
import type { AlertView } from '../../src/alerts/types.js';
import { ENROLLMENT_KEY, startHub, type TestHub } from '../support/hub.js';
import { waitFor } from '../support/wait.js';

const fast = { baseMs: 50, capMs: 200, rebootPauseMs: 100, retryMs: 100 };
const DEVICES = 3;
let hub: TestHub | undefined;
const fleets: Fleet[] = [];
afterEach(async () => {
  for (const fleet of fleets.splice(0)) await fleet.stop();
  await hub?.close();
  hub = undefined;
});

function thermostats(h: TestHub): Fleet {
  const options: FleetOptions = {
    ...withDefaults({ url: h.deviceUrl, enrollmentKey: ENROLLMENT_KEY, devices: DEVICES, prefix: 'sim-', profile: 'thermostat', rate: 5, ramp: 1_000 }),
    timing: fast, drainMs: 5_000,
  };
  const fleet = new Fleet(options).start();
  fleets.push(fleet);
  return fleet;
}

function record(h: TestHub): { firing: AlertView[]; resolved: AlertView[] } {
  const seen = { firing: [] as AlertView[], resolved: [] as AlertView[] };
  h.app.bus.on('alert.firing', ({ alert }) => seen.firing.push(alert));
  h.app.bus.on('alert.resolved', ({ alert }) => seen.resolved.push(alert));
  return seen;
}

/** The devices with an alert of this rule among `alerts`, each once (a busy machine may hold a device's readings back long enough to fire early). */
const devicesOf = (alerts: AlertView[], ruleId: string) => [...new Set(alerts.filter((a) => a.ruleId === ruleId).map((a) => a.deviceId))].sort();

describe('alert rules on device-sim readings', () => {
  it('a threshold rule fires for each thermostat and resolves from its readings when the threshold moves above them', { timeout: 60_000 }, async () => {
    hub = await startHub();
    const seen = record(hub);
    // Room temperatures are about 16-25 °C: every thermostat is above 0.
    const warm = (await hub.api('POST', '/v1/rules', { name: 'warm', devices: { prefix: 'sim-' }, series: 'temperature', condition: { kind: 'above', threshold: 0 }, forSeconds: 1 })).body;
    const fleet = thermostats(hub);
    await waitFor(() => devicesOf(seen.firing, warm.id).length === DEVICES, { what: 'every thermostat firing' });
    expect(new Set(devicesOf(seen.firing, warm.id))).toEqual(new Set(fleet.devices.map((d) => d.id)));
    for (const alert of seen.firing) expect(alert.value).toBeGreaterThan(0);
    expect((await hub.api('GET', '/v1/alerts')).body.alerts).toHaveLength(DEVICES);

    expect((await hub.api('PATCH', `/v1/rules/${warm.id}`, { condition: { kind: 'above', threshold: 1000, clearAt: 100 } })).status).toBe(200);
    await waitFor(() => devicesOf(seen.resolved, warm.id).length === DEVICES, { what: 'every thermostat resolved' });
    for (const alert of seen.resolved) {
      expect(alert.value).toBeLessThanOrEqual(100);
      expect(alert.resolvedAt).toBeGreaterThanOrEqual(alert.firingSince);
    }
    expect((await hub.api('GET', '/v1/alerts')).body.alerts).toEqual([]);
    // Each fired once and resolved once, however many readings came.
    expect(seen.firing).toHaveLength(DEVICES);
    expect(seen.resolved).toHaveLength(DEVICES);
  });

  it('a staleness rule fires for each thermostat once the fleet stops and resolves when it is back', { timeout: 60_000 }, async () => {
    hub = await startHub({}, { alerts: { sweepMs: 100 } });
    const seen = record(hub);
    const quiet = (await hub.api('POST', '/v1/rules', { name: 'quiet', devices: { prefix: 'sim-' }, series: 'temperature', condition: { kind: 'stale', afterSeconds: 3 } })).body;
    // A prefix rule watches the devices it has seen a reading from: every thermostat sends one first.
    const sent = new Set<string>();
    hub.app.bus.on('telemetry.accepted', ({ deviceId, readings }) => { if (readings.some((r) => r.name.endsWith('/temperature'))) sent.add(deviceId); });
    const first = thermostats(hub);
    const ALL = first.devices.map((d) => d.id).sort();
    await waitFor(() => sent.size === DEVICES, { what: 'a reading from every thermostat' });
    await first.stop();
    fleets.splice(fleets.indexOf(first), 1);
    await waitFor(() => devicesOf(seen.firing, quiet.id).length === DEVICES, { what: 'every thermostat stale' });
    expect(devicesOf(seen.firing, quiet.id)).toEqual(ALL);
    for (const alert of seen.firing) expect(alert.value).toBeUndefined();

    thermostats(hub);
    await waitFor(() => hub!.app.alerts.firing().length === 0 && devicesOf(seen.resolved, quiet.id).length === DEVICES, { what: 'every thermostat back' });
    expect(devicesOf(seen.resolved, quiet.id)).toEqual(ALL);
    expect((await hub.api('GET', '/v1/alerts')).body.alerts).toEqual([]);
  });
});
