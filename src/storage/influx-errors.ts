/**
 * Sorts InfluxDB failures (node-influx's and influx-write.ts's) into the two outcomes the writer acts on:
 * try again later (the server or the network), or give up on these points
 * (the server read them and said no). Everything else is a bug or a config
 * problem that retrying may outlast, so it is treated as "try again".
 */

import { InfluxHttpError } from './influx-write.js';

/**
 * Writes fail with influx-write.ts's InfluxHttpError. node-influx's
 * RequestError (3xx/4xx, queries and database management) carries the
 * response; it is not exported from the package root, so it is recognised by shape.
 */
function httpStatusOf(err: unknown): number | undefined {
  if (err instanceof InfluxHttpError) return err.status;
  if (!(err instanceof Error) || !('res' in err)) return undefined;
  const status = (err as { res?: { statusCode?: unknown } }).res?.statusCode;
  return typeof status === 'number' ? status : undefined;
}

export type InfluxFailure =
  /** Network error, timeout, 5xx, or a 4xx that is not the points' fault (auth, missing database). */
  | { kind: 'unavailable'; detail: string }
  /** InfluxDB parsed the request and refused (some of) its points: 400 or 413. */
  | { kind: 'rejected'; status: number; detail: string };

/** InfluxDB 1.x answers `{"error":"..."}`; node-influx wraps it in "A 400 Bad Request error occurred: ...". */
function influxErrorText(message: string): string {
  const start = message.indexOf('{');
  if (start >= 0) {
    try {
      const body = JSON.parse(message.slice(start)) as { error?: unknown };
      if (typeof body.error === 'string') return body.error;
    } catch {
      // Not JSON: keep node-influx's text.
    }
  }
  return message;
}

export function classifyInfluxError(err: unknown): InfluxFailure {
  const status = httpStatusOf(err);
  if (status !== undefined && err instanceof Error) {
    const detail = influxErrorText(err.message);
    // 401/403 (credentials) and 404 (database missing) are the hub's problem, not the device's:
    // its readings must be resent later, not dropped as malformed.
    if (status === 400 || status === 413) return { kind: 'rejected', status, detail };
    return { kind: 'unavailable', detail: `HTTP ${status}: ${detail}` };
  }
  const code = (err as { code?: unknown } | null)?.code;
  const message = err instanceof Error ? err.message : String(err);
  return { kind: 'unavailable', detail: typeof code === 'string' ? `${code}: ${message}` : message || 'request failed' };
}
