/**
 * The JSON shapes of docs/live-stream.md, and the conversions from bus events
 * to them. Conversions happen once per event on the hub side, not once per
 * connection, so a hundred dashboards cost one conversion.
 */
import type { AlertView } from '../alerts/types.js';
import type { CommandView } from '../commands/types.js';
import type { JobView } from '../jobs/types.js';
import type { Reading, ReadingKind } from '../protocol/messages.js';
import type { JsonObject } from '../state/types.js';

export type LiveReading = {
  device: string;
  name: string;
  unit?: string;
  /** Reading time, epoch milliseconds (fractional for sub-millisecond times). */
  t: number;
  kind: ReadingKind;
  v: number | string | boolean;
};

/** `removed` is set once, on the event that says an operator removed the device. */
export type LiveDeviceStatus = { device: string; online: boolean; at: number; reason: string; removed?: true };

export type LiveStateChange =
  | { device: string; kind: 'reported'; state: JsonObject; at: number }
  | { device: string; kind: 'desired'; state: JsonObject; version: number; at: number };

/** Everything that happened in one tick, before any connection's filter. */
export type LiveBatch = {
  readings: LiveReading[];
  status: LiveDeviceStatus[];
  commands: CommandView[];
  state: LiveStateChange[];
  jobs: JobView[];
  /** Alerts that fired or resolved (src/alerts): `state` says which. */
  alerts: AlertView[];
};

export const BATCH_KEYS = ['readings', 'status', 'commands', 'state', 'jobs', 'alerts'] as const;

export function emptyBatch(): LiveBatch {
  return { readings: [], status: [], commands: [], state: [], jobs: [], alerts: [] };
}

export function batchSize(batch: LiveBatch): number {
  return batch.readings.length + batch.status.length + batch.commands.length + batch.state.length + batch.jobs.length + batch.alerts.length;
}

export function toLiveReading(device: string, reading: Reading): LiveReading {
  const v = reading.value instanceof Uint8Array ? Buffer.from(reading.value).toString('base64') : reading.value;
  const t = reading.timeUs / 1000;
  // Two literals, not a spread of a temporary: this runs for every reading the hub accepts.
  return reading.unit === undefined
    ? { device, name: reading.name, t, kind: reading.kind, v }
    : { device, name: reading.name, unit: reading.unit, t, kind: reading.kind, v };
}

export function seriesKey(device: string, name: string): string {
  return `${device}\u0000${name}`;
}

/** The events frame: empty lists are left out, as the contract says. */
export function eventsFrame(seq: number, batch: LiveBatch, conflated: boolean): string {
  const frame: Record<string, unknown> = { type: 'events', seq };
  for (const key of BATCH_KEYS) if (batch[key].length > 0) frame[key] = batch[key];
  frame.conflated = conflated;
  return JSON.stringify(frame);
}
