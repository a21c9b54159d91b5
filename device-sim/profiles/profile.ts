/**
 * What a profile is, and how its samples become one SenML pack.
 *
 * A profile only says what one instant looks like (one reading per channel);
 * packPack() turns `batch` records' worth of instants into a pack that uses
 * base values the way constrained firmware does: bn and bt on the first
 * record, bu when most channels share a unit, t offsets after that. Times are
 * absolute (bt = seconds since the epoch, with a fraction), so a resend after
 * a reconnect carries the time of the reading, not of the resend.
 */
import { senmlRecord, type SenmlFields } from '../../src/protocol/index.js';

/** One reading of one channel at one instant: a value (v) or a running total (s). */
export type Reading = { n: string; u?: string; v?: number; s?: number };

export interface Profile<S = unknown> {
  readonly name: string;
  /** Unit given once as bu; readings in that unit omit u. */
  readonly baseUnit?: string;
  /** Readings per instant (the length of every sample() result). */
  readonly channels: number;
  /** A fresh device: a few numbers, kept per device for its whole life. */
  init(random: () => number, timeS: number): S;
  /** The readings at `timeS` (seconds since the epoch); may advance `state`. */
  sample(state: S, timeS: number, random: () => number): Reading[];
}

/** Three or four significant decimals are plenty for a sensor and keep the text of errors readable. */
const tidy = (x: number, decimals: number): number => Math.round(x * 10 ** decimals) / 10 ** decimals;

/**
 * `batch` records from `profile`, sampled at instants spread evenly over
 * (fromS, toS]: the last instant is toS, which becomes bt. Readings of one
 * instant share its t; the last instant may be cut short to hit `batch`.
 * (name, time) pairs never repeat within a device as long as the caller
 * keeps fromS at the previous pack's toS (InfluxDB would merge such points).
 */
export function buildPack<S>(
  profile: Profile<S>, state: S, baseName: string, fromS: number, toS: number, batch: number, random: () => number,
): Map<number, unknown>[] {
  const instants = Math.max(1, Math.ceil(batch / profile.channels));
  const step = (toS - fromS) / instants;
  const records: Map<number, unknown>[] = [];
  // Oldest instant first, so profiles that integrate (energy, position) move forward in time.
  for (let k = instants - 1; k >= 0 && records.length < batch; k--) {
    const t = k === 0 ? 0 : -tidy(k * step, 3);
    for (const reading of profile.sample(state, toS + t, random)) {
      if (records.length >= batch) break;
      const fields: SenmlFields = { n: reading.n };
      if (reading.u !== undefined && reading.u !== profile.baseUnit) fields.u = reading.u;
      if (reading.s !== undefined) fields.s = tidy(reading.s, 4);
      else fields.v = tidy(reading.v ?? 0, 4);
      if (t !== 0) fields.t = t;
      if (records.length === 0) {
        fields.bn = baseName;
        fields.bt = toS;
        if (profile.baseUnit !== undefined) fields.bu = profile.baseUnit;
      }
      records.push(senmlRecord(fields));
    }
  }
  return records;
}

/** A normally distributed number (Box-Muller), for random walks. */
export function gauss(random: () => number): number {
  const u = 1 - random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

/** Fraction of the UTC day at `timeS`, 0 at midnight. */
export const dayPhase = (timeS: number): number => (timeS % 86_400) / 86_400;
