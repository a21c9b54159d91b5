/**
 * What the page knows of the fleet, fed by live frames: each device's status
 * and newest reading, and every series' newest reading. Applying a frame only
 * changes data and notifies; views render in the next animation frame.
 */
import type { AlertView, CommandView, EventsFrame, LiveDeviceStatus, LiveReading, LiveStateChange, SnapshotFrame } from './types.js';

export type DeviceEntry = {
  id: string;
  online: boolean;
  /** Epoch ms of the last status change. */
  at: number;
  reason: string;
  /** Newest reading of any series (reading time). */
  last?: LiveReading;
};

export type FleetChange = {
  /** Devices were added or removed (the sorted id list changed). */
  membership: boolean;
  /** Some device's status or latest value changed. */
  status: boolean;
  snapshot: boolean;
  readings: LiveReading[];
  commands: CommandView[];
  state: LiveStateChange[];
  /** Some alert fired or resolved (or the snapshot replaced them all). */
  alerts: boolean;
};

type Listener = (change: FleetChange) => void;

export class FleetStore {
  readonly devices = new Map<string, DeviceEntry>();
  /** Newest reading per device and series: device -> name -> reading. */
  readonly latest = new Map<string, Map<string, LiveReading>>();
  /** The alerts firing now, by alert id, oldest first. */
  readonly alerts = new Map<string, AlertView>();
  #sortedIds: string[] = [];
  #sortedDirty = false;
  #online = 0;
  readonly #listeners = new Set<Listener>();
  lastSeq = 0;

  get onlineCount(): number {
    return this.#online;
  }

  get offlineCount(): number {
    return this.devices.size - this.#online;
  }

  /** Device ids in order (sorted lazily, once per change of membership). */
  get sortedIds(): readonly string[] {
    if (this.#sortedDirty) {
      this.#sortedIds = [...this.devices.keys()].sort();
      this.#sortedDirty = false;
    }
    return this.#sortedIds;
  }

  listen(listener: Listener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  applySnapshot(frame: SnapshotFrame): void {
    this.devices.clear();
    this.latest.clear();
    this.#online = 0;
    for (const status of frame.devices ?? []) this.#applyStatus(status);
    for (const reading of frame.latest ?? []) this.#applyReading(reading);
    this.alerts.clear();
    for (const alert of [...(frame.alerts ?? [])].sort((a, b) => a.firingSince - b.firingSince)) this.alerts.set(alert.id, alert);
    this.#sortedDirty = true;
    this.lastSeq = frame.seq;
    this.#emit({ membership: true, status: true, snapshot: true, readings: frame.latest ?? [], commands: [], state: [], alerts: true });
  }

  applyEvents(frame: EventsFrame): void {
    this.lastSeq = frame.seq;
    let membership = false;
    for (const status of frame.status ?? []) membership = this.#applyStatus(status) || membership;
    for (const reading of frame.readings ?? []) membership = this.#applyReading(reading) || membership;
    if (membership) this.#sortedDirty = true;
    for (const alert of frame.alerts ?? []) {
      if (alert.state === 'firing') this.alerts.set(alert.id, alert);
      else this.alerts.delete(alert.id);
    }
    this.#emit({
      membership,
      status: (frame.status?.length ?? 0) > 0 || (frame.readings?.length ?? 0) > 0,
      snapshot: false,
      readings: frame.readings ?? [],
      commands: frame.commands ?? [],
      state: frame.state ?? [],
      alerts: (frame.alerts?.length ?? 0) > 0,
    });
  }

  /** The alerts firing now on one device, oldest first. */
  alertsOf(deviceId: string): AlertView[] {
    return [...this.alerts.values()].filter((alert) => alert.deviceId === deviceId);
  }

  /** The offline devices that went offline most recently, newest first. */
  recentlyOffline(limit: number): DeviceEntry[] {
    const top: DeviceEntry[] = [];
    for (const entry of this.devices.values()) {
      if (entry.online) continue;
      if (top.length < limit) {
        top.push(entry);
        if (top.length === limit) top.sort((a, b) => b.at - a.at);
      } else if (entry.at > top[limit - 1]!.at) {
        top[limit - 1] = entry;
        for (let i = limit - 1; i > 0 && top[i]!.at > top[i - 1]!.at; i--) [top[i], top[i - 1]] = [top[i - 1]!, top[i]!];
      }
    }
    if (top.length < limit) top.sort((a, b) => b.at - a.at);
    return top;
  }

  /** True when the fleet's membership changed (a device is new, or was removed). */
  #applyStatus(status: LiveDeviceStatus): boolean {
    const entry = this.devices.get(status.device);
    if (status.removed) {
      if (!entry) return false;
      if (entry.online) this.#online--;
      this.devices.delete(status.device);
      this.latest.delete(status.device);
      return true;
    }
    if (!entry) {
      this.devices.set(status.device, { id: status.device, online: status.online, at: status.at, reason: status.reason });
      if (status.online) this.#online++;
      return true;
    }
    if (status.at < entry.at) return false;
    if (entry.online !== status.online) this.#online += status.online ? 1 : -1;
    entry.online = status.online;
    entry.at = status.at;
    entry.reason = status.reason;
    return false;
  }

  /** True when the device is new (a reading from a device the snapshot did not list). */
  #applyReading(reading: LiveReading): boolean {
    let series = this.latest.get(reading.device);
    if (!series) this.latest.set(reading.device, (series = new Map()));
    const previous = series.get(reading.name);
    if (!previous || reading.t >= previous.t) series.set(reading.name, reading);
    let entry = this.devices.get(reading.device);
    let added = false;
    if (!entry) {
      // Readings only come from a connected device.
      entry = { id: reading.device, online: true, at: reading.t, reason: 'connected' };
      this.devices.set(reading.device, entry);
      this.#online++;
      added = true;
    }
    if (!entry.last || reading.t >= entry.last.t) entry.last = reading;
    return added;
  }

  #emit(change: FleetChange): void {
    for (const listener of this.#listeners) listener(change);
  }
}
