/**
 * An alert's firing or resolving as an InfluxDB point, measurement `alert`,
 * written through the spool like every point the hub stores (so it survives
 * an InfluxDB outage like readings do). Tagged by rule, device and series
 * (few distinct values each, what Grafana groups by); the state and the
 * value that caused it are fields.
 */
import type { IPoint } from 'influx';
import type { AlertView } from './types.js';

export const ALERT_MEASUREMENT = 'alert';

export function alertPoint(alert: AlertView, timeMs: number): IPoint {
  const fields: Record<string, string | number> = { state: alert.state };
  // A number always (InfluxDB 1.x reads `41` as a float), never NaN or Infinity (no line-protocol spelling).
  if (alert.value !== undefined && Number.isFinite(alert.value)) fields.value = alert.value;
  return {
    measurement: ALERT_MEASUREMENT,
    tags: { rule: alert.ruleId, device: alert.deviceId, series: alert.series },
    fields,
    // Microseconds as a decimal string (storage/schema.ts says why); ms * 1000 is whole.
    timestamp: String(Math.trunc(timeMs) * 1000),
  };
}
