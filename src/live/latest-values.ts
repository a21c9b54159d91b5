/**
 * The newest reading of every series, by reading time, not by arrival: a
 * device resending an old message after a reconnect, or backfilling, must not
 * make the dashboard show an old value as current. The same test decides
 * whether a reading goes into the live events at all.
 */
import type { LiveFilter } from './filter.js';
import { seriesKey, type LiveReading } from './types.js';

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
