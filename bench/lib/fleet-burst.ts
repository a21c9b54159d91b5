/**
 * A fleet of N devices as the hub's event bus sees it, without N sockets:
 * the events the gateway would publish (online, readings, offline), put on a
 * hub's bus directly so its real live stream carries them to the page. Shared
 * by test/dashboard/fleet-scale-live.test.ts (what the page shows) and
 * `npm run bench -- fleet-page` (how long the page's main thread is blocked).
 */
import type { EventBus } from '../../src/events/bus.js';

export const fleetDeviceId = (i: number): string => `fleet-${String(i).padStart(5, '0')}`;

export function emitFleetOnline(bus: EventBus, devices: number, at = Date.now()): void {
  for (let i = 0; i < devices; i++) bus.emit('device.online', { deviceId: fleetDeviceId(i), at, remoteAddress: '127.0.0.1', method: 'secret' });
}

/**
 * `rounds` readings of `temp` for every device, `pauseMs` apart (a few live
 * frames of up to N readings each). Round r's value for device i is r + i/N,
 * so the last round shows as "temp <rounds - 1>" on device 0's row.
 */
export async function emitReadingRounds(bus: EventBus, devices: number, rounds: number, pauseMs = 150): Promise<void> {
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < devices; i++) {
      bus.emit('telemetry.accepted', { deviceId: fleetDeviceId(i), readings: [{ name: 'temp', unit: 'Cel', kind: 'value', value: round + i / devices, timeUs: (Date.now() + round) * 1000 }] });
    }
    await new Promise((resolve) => setTimeout(resolve, pauseMs));
  }
}

/** Every tenth device (0, 10, 20, ...) goes offline with ping-timeout. */
export function emitEveryTenthOffline(bus: EventBus, devices: number, at = Date.now()): void {
  for (let i = 0; i < devices; i += 10) bus.emit('device.offline', { deviceId: fleetDeviceId(i), at, reason: 'ping-timeout' });
}
