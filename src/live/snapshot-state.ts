/**
 * What a snapshot is made of, kept by the live module itself so a snapshot
 * for thousands of devices is a walk over two Maps, with no registry or
 * InfluxDB reads per connection:
 * - the newest reading of every series, by reading time, not by arrival: a
 *   device resending an old message after a reconnect, or backfilling, must
 *   not make the dashboard show an old value as current (the same test
 *   decides whether a reading goes into the live events at all);
 * - every known device's online status: loaded once from the registry (and
 *   the gateway's sessions) at start, then fed by device.online/offline.
 */
import type { HubEvents } from '../events/bus.js';
import type { DeviceRecord } from '../registry/device-registry.js';
import type { LiveFilter } from './filter.js';
import { seriesKey, type LiveDeviceStatus, type LiveReading } from './types.js';

export class LatestValues {
  readonly #bySeries = new Map<string, LiveReading>();
  readonly #maxSeries: number;
  #dropped = 0;

  /** `maxSeries` bounds memory against a fleet inventing names; past it new series are not tracked. */
  constructor(maxSeries: number) {
    this.#maxSeries = maxSeries;
  }

  /** Keeps `reading` when it is newer than the series' latest; true when it was. */
  offer(reading: LiveReading): boolean {
    const key = seriesKey(reading.device, reading.name);
    const current = this.#bySeries.get(key);
    if (current !== undefined) {
      // Equal times replace, as InfluxDB keeps the last write of a point.
      if (reading.t < current.t) return false;
    } else if (this.#bySeries.size >= this.#maxSeries) {
      this.#dropped++;
      return true;
    }
    this.#bySeries.set(key, reading);
    return true;
  }

  /** A removed device's series would otherwise linger in every snapshot. */
  forgetDevice(device: string): void {
    const prefix = seriesKey(device, '');
    for (const key of this.#bySeries.keys()) if (key.startsWith(prefix)) this.#bySeries.delete(key);
  }

  select(filter: LiveFilter): LiveReading[] {
    const out: LiveReading[] = [];
    for (const reading of this.#bySeries.values()) if (filter.reading(reading.device, reading.name)) out.push(reading);
    return out;
  }

  get size(): number {
    return this.#bySeries.size;
  }

  /** Readings of series that arrived after the bound was reached (streamed, not remembered). */
  get untracked(): number {
    return this.#dropped;
  }
}

export type StatusSource = {
  /** Registry records in pages; the map reads them once. */
  list(options: { limit: number; cursor?: string }): Promise<{ devices: DeviceRecord[]; nextCursor?: string }>;
  isOnline(record: DeviceRecord): boolean;
};

export class StatusMap {
  readonly #byDevice = new Map<string, LiveDeviceStatus>();
  #online = 0;

  /** Reads every device's status once; a device an event already told about keeps that newer status. */
  async load(source: StatusSource): Promise<void> {
    let cursor: string | undefined;
    do {
      const page = await source.list({ limit: 1000, ...(cursor !== undefined ? { cursor } : {}) });
      for (const record of page.devices) {
        if (this.#byDevice.has(record.id)) continue;
        const s = record.status;
        const online = source.isOnline(record);
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

  /** Undefined for a device no longer known: a removed device's connection closes after its removal. */
  offline(event: HubEvents['device.offline']): LiveDeviceStatus | undefined {
    if (!this.#byDevice.has(event.deviceId)) return undefined;
    return this.#set({ device: event.deviceId, online: false, at: event.at, reason: event.reason });
  }

  /** Undefined when the device was known already (a new secret changes nothing a dashboard shows). */
  registered(event: HubEvents['device.registered']): LiveDeviceStatus | undefined {
    if (this.#byDevice.has(event.deviceId)) return undefined;
    return this.#set({ device: event.deviceId, online: false, at: event.at, reason: 'never connected' });
  }

  removed(event: HubEvents['device.removed']): LiveDeviceStatus | undefined {
    const previous = this.#byDevice.get(event.deviceId);
    if (!previous) return undefined;
    if (previous.online) this.#online--;
    this.#byDevice.delete(event.deviceId);
    return { device: event.deviceId, online: false, at: event.at, reason: 'removed', removed: true };
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
