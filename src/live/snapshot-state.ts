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
import type { Reading } from '../protocol/messages.js';
import { toLiveReading, type LiveDeviceStatus, type LiveReading } from './types.js';

/**
 * What is kept of a series' latest reading: as the live stream sends it, or,
 * while nobody watches (stream-hub.ts), the accepted Reading itself, turned
 * into a LiveReading only when a snapshot asks for it. So a hub that nobody
 * watches makes no object per reading for the live stream.
 */
type Held = LiveReading | Reading;

export class LatestValues {
  /** By device, then by name: no key string made per reading. */
  readonly #byDevice = new Map<string, Map<string, Held>>();
  readonly #maxSeries: number;
  #size = 0;
  #dropped = 0;

  /** `maxSeries` bounds memory against a fleet inventing names; past it new series are not tracked. */
  constructor(maxSeries: number) {
    this.#maxSeries = maxSeries;
  }

  /** Keeps `reading` when it is newer than the series' latest; true when it was. */
  offer(reading: LiveReading): boolean {
    return this.#offer(reading.device, reading.name, reading.t, reading);
  }

  /** offer() for a reading as accepted from `device`, kept as it is (nobody is watching); its binary value is copied out of the frame. */
  offerAccepted(device: string, reading: Reading): void {
    this.#offer(device, reading.name, reading.timeUs / 1000, reading.value instanceof Uint8Array ? toLiveReading(device, reading) : reading);
  }

  #offer(device: string, name: string, t: number, held: Held): boolean {
    let names = this.#byDevice.get(device);
    const current = names?.get(name);
    if (current !== undefined) {
      // Equal times replace, as InfluxDB keeps the last write of a point.
      if (t < timeOf(current)) return false;
    } else if (this.#size >= this.#maxSeries) {
      this.#dropped++;
      return true;
    } else {
      if (names === undefined) this.#byDevice.set(device, (names = new Map()));
      this.#size++;
    }
    names!.set(name, held);
    return true;
  }

  /** A removed device's series would otherwise linger in every snapshot. */
  forgetDevice(device: string): void {
    const names = this.#byDevice.get(device);
    if (names === undefined) return;
    this.#size -= names.size;
    this.#byDevice.delete(device);
  }

  select(filter: LiveFilter): LiveReading[] {
    const out: LiveReading[] = [];
    for (const [device, names] of this.#byDevice) {
      if (!filter.device(device)) continue;
      for (const [name, held] of names) {
        if (!filter.reading(device, name)) continue;
        if ('device' in held) {
          out.push(held);
        } else {
          const live = toLiveReading(device, held);
          names.set(name, live);
          out.push(live);
        }
      }
    }
    return out;
  }

  get size(): number {
    return this.#size;
  }

  /** Readings of series that arrived after the bound was reached (streamed, not remembered). */
  get untracked(): number {
    return this.#dropped;
  }
}

function timeOf(held: Held): number {
  return 'device' in held ? held.t : held.timeUs / 1000;
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
