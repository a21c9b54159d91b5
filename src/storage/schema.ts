/**
 * Protocol v1 section 6 as InfluxDB points: the only place that knows
 * measurement, tag and field names. Pure: readings in, points out.
 */

import type { IPoint } from 'influx';
import { PulsewireError } from '../errors/catalog.js';
import type { Reading, ReadingKind } from '../protocol/messages.js';

export const MEASUREMENT = { TELEMETRY: 'telemetry', DEVICE_STATUS: 'device_status', COMMAND: 'command', AUDIT: 'audit' } as const;
export const TAG = { DEVICE: 'device', NAME: 'name', UNIT: 'unit', STATUS: 'status' } as const;
export const FIELD_BY_KIND = { value: 'value', text: 'text', flag: 'flag', data: 'data', sum: 'sum' } as const satisfies Record<ReadingKind, string>;
export const STATUS_FIELD = { ONLINE: 'online', REASON: 'reason' } as const;
export const COMMAND_FIELD = { LATENCY_MS: 'latency_ms' } as const;

/** Points carry microsecond timestamps; every write must say so. */
export const WRITE_PRECISION = 'u' as const;

/**
 * node-influx writes a number with String(), so 41 goes out as `41`, which
 * InfluxDB 1.x reads as a float (integers need an `i` suffix). That is what
 * section 6 wants: a sensor that reports 41 then 41.5 must not hit a field
 * type conflict. NaN and Infinity have no line-protocol spelling and would
 * fail the whole request, so they are refused here.
 */
function floatField(reading: Reading): number {
  if (typeof reading.value !== 'number' || !Number.isFinite(reading.value)) {
    throw new PulsewireError('PW_ERR_PACK_MALFORMED', `${reading.name}: ${reading.kind} must be a finite number`);
  }
  return reading.value;
}

function fieldValue(reading: Reading): number | string | boolean {
  switch (reading.kind) {
    case 'value':
    case 'sum':
      return floatField(reading);
    case 'text':
      if (typeof reading.value === 'string') return reading.value;
      break;
    case 'flag':
      if (typeof reading.value === 'boolean') return reading.value;
      break;
    case 'data':
      if (reading.value instanceof Uint8Array) {
        return Buffer.from(reading.value.buffer, reading.value.byteOffset, reading.value.byteLength).toString('base64');
      }
      break;
  }
  throw new PulsewireError('PW_ERR_PACK_MALFORMED', `${reading.name}: value does not match kind ${String(reading.kind)}`);
}

/**
 * The timestamp goes out as a decimal string: node-influx drops a falsy
 * timestamp (so time 0 would become "now"), and a string is never printed in
 * exponent notation. Microseconds since 1970 stay below 2^53 until year 2255.
 */
function timestampUs(timeUs: number): string {
  // A fraction of a microsecond (say, from ms * 1000) is below the precision we store, not an error.
  const whole = Math.trunc(timeUs);
  if (!Number.isSafeInteger(whole)) throw new PulsewireError('PW_ERR_TIME_RANGE', `time ${timeUs} µs is not representable`);
  return String(whole);
}

export function readingPoints(deviceId: string, readings: readonly Reading[]): IPoint[] {
  // A loop and literal keys (TAG, FIELD_BY_KIND spelled out): this runs for every reading, and
  // computed keys gave V8 a slow path and more garbage (profile of the hub at full ingest).
  const points: IPoint[] = new Array(readings.length);
  for (let i = 0; i < readings.length; i++) {
    const reading = readings[i]!;
    // Line protocol has no empty tag value; an empty unit is no unit.
    const tags: Record<string, string> = reading.unit
      ? { device: deviceId, name: reading.name, unit: reading.unit }
      : { device: deviceId, name: reading.name };
    points[i] = { measurement: MEASUREMENT.TELEMETRY, tags, fields: fieldOf(reading), timestamp: timestampUs(reading.timeUs) };
  }
  return points;
}

/** The reading's one field, named by its kind (FIELD_BY_KIND). */
function fieldOf(reading: Reading): Record<string, number | string | boolean> {
  const value = fieldValue(reading);
  switch (reading.kind) {
    case 'value': return { value };
    case 'sum': return { sum: value };
    case 'text': return { text: value };
    case 'flag': return { flag: value };
    case 'data': return { data: value };
  }
}

export function statusPoint(deviceId: string, online: boolean, reason: string, timeUs: number): IPoint {
  return {
    measurement: MEASUREMENT.DEVICE_STATUS,
    tags: { [TAG.DEVICE]: deviceId },
    fields: { [STATUS_FIELD.ONLINE]: online, [STATUS_FIELD.REASON]: reason },
    timestamp: timestampUs(timeUs),
  };
}

/**
 * One audit entry (audit/audit-log.ts), for Grafana: tagged by who, what and
 * how it ended (few distinct values each), with the target, status, source
 * and entry id as fields (many distinct values: as tags they would multiply series).
 */
export function auditPoint(
  entry: { id: string; keyId: string; key: string; action: string; target: string; outcome: string; status: number; source: string },
  timeUs: number,
): IPoint {
  return {
    measurement: MEASUREMENT.AUDIT,
    tags: { key: entry.key, action: entry.action, outcome: entry.outcome },
    fields: { id: entry.id, key_id: entry.keyId, target: entry.target, status: entry.status, source: entry.source },
    timestamp: timestampUs(timeUs),
  };
}

/** A command's final outcome (protocol section 6 allows a `command` measurement): fleet statistics per name and status. */
export function commandPoint(deviceId: string, name: string, status: string, latencyMs: number, timeUs: number): IPoint {
  return {
    measurement: MEASUREMENT.COMMAND,
    tags: { [TAG.DEVICE]: deviceId, [TAG.NAME]: name, [TAG.STATUS]: status },
    fields: { [COMMAND_FIELD.LATENCY_MS]: latencyMs },
    timestamp: timestampUs(timeUs),
  };
}
