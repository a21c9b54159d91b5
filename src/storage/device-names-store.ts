/**
 * The durable copy of each device's distinct series names, for the
 * per-device budget (PULSEWIRE_MAX_NAMES_PER_DEVICE, ACK 5) and the hub's
 * series count (PULSEWIRE_MAX_SERIES, ACK 5). In memory only, the budget
 * started again at every restart: a device could add its 1000 names after
 * each one, and every series it added stays in InfluxDB's index.
 *
 * One empty record per (device, name), key `${deviceId}/${name}` (device ids
 * cannot contain '/', so `${id}/` .. `${id}0` is exactly one device), put in
 * the spool's commit together with the readings that brought the name: a
 * name counts exactly when readings under it were durably accepted. Names
 * are written only when new to the device, so after its first messages a
 * device costs nothing here. The number of records is the hub's series count
 * (lmdb keeps it per database, read once at start).
 */
import type { Database } from 'lmdb';

export class DeviceNamesStore {
  readonly #db: Database<true, string>;
  /** Records stored, plus names reserved by messages not yet committed, minus those refused since. */
  #series: number;

  constructor(db: Database<true, string>) {
    this.#db = db;
    this.#series = (db.getStats() as { entryCount: number }).entryCount;
  }

  /** The device's names, as stored. */
  load(deviceId: string): string[] {
    const prefix = `${deviceId}/`;
    const names: string[] = [];
    for (const key of this.#db.getKeys({ start: prefix, end: `${deviceId}0` })) names.push(key.slice(prefix.length));
    return names;
  }

  /** Series (device, name) known to this hub process, counting those being committed. */
  get series(): number {
    return this.#series;
  }

  /** Counts one new series if that stays within `max`; false when the hub is at its bound. */
  reserve(max: number): boolean {
    if (this.#series >= max) return false;
    this.#series++;
    return true;
  }

  /** Gives back reservations whose message was not stored. */
  release(count: number): void {
    this.#series -= count;
  }

  /** Issues the put; the spool calls it in the turn of its record's commit so both are durable together. */
  record(deviceId: string, name: string): Promise<boolean> {
    return this.#db.put(`${deviceId}/${name}`, true);
  }
}
