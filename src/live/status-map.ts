/**
 * Every known device's online status, kept by the live module itself: loaded
 * once from the registry (and the gateway's sessions) at start, then fed by
 * device.online/device.offline. A snapshot for thousands of devices is then a
 * walk over one Map, with no registry reads per connection.
 */
import type { HubEvents } from '../events/bus.js';
import type { DeviceRecord } from '../registry/device-registry.js';
import type { LiveDeviceStatus } from './types.js';

export type StatusSource = {
  /** Registry records in pages; the map reads them once. */
  list(options: { limit: number; cursor?: string }): { devices: DeviceRecord[]; nextCursor?: string };
  isOnline(deviceId: string): boolean;
};

export class StatusMap {
  readonly #byDevice = new Map<string, LiveDeviceStatus>();
  #online = 0;

  load(source: StatusSource): void {
    let cursor: string | undefined;
    do {
      const page = source.list({ limit: 1000, cursor });
      for (const record of page.devices) {
        const s = record.status;
        const online = source.isOnline(record.id);
        this.#set({
          device: record.id,
          online,
          at: (online ? s.connectedAt : s.lastSeen) ?? s.connectedAt ?? record.createdAt,
          reason: online ? 'connected' : s.offlineReason ?? 'never connected',
        });
      }
      cursor = page.nextCursor;
    } while (cursor !== undefined);
  }

  online(event: HubEvents['device.online']): LiveDeviceStatus {
    return this.#set({ device: event.deviceId, online: true, at: event.at, reason: 'connected' });
  }

  offline(event: HubEvents['device.offline']): LiveDeviceStatus {
    return this.#set({ device: event.deviceId, online: false, at: event.at, reason: event.reason });
  }

  select(accept: (device: string) => boolean): { devices: LiveDeviceStatus[]; counts: { online: number; offline: number } } {
    const devices: LiveDeviceStatus[] = [];
    let online = 0;
    for (const status of this.#byDevice.values()) {
      if (!accept(status.device)) continue;
      devices.push(status);
      if (status.online) online++;
    }
    return { devices, counts: { online, offline: devices.length - online } };
  }

  get onlineCount(): number {
    return this.#online;
  }

  get size(): number {
    return this.#byDevice.size;
  }

  #set(status: LiveDeviceStatus): LiveDeviceStatus {
    const previous = this.#byDevice.get(status.device);
    if (previous?.online) this.#online--;
    if (status.online) this.#online++;
    this.#byDevice.set(status.device, status);
    return status;
  }
}
