/**
 * GET /v1/devices/:id/telemetry: one series of a device, aggregated into time
 * buckets, read from InfluxDB.
 *
 * Every value that comes from the request reaches InfluxDB as a bound
 * parameter (node-influx `placeholders`, InfluxDB's `params`), never spliced
 * into the InfluxQL text: a name like `x' OR 1=1` is just a name that
 * matches nothing. The only parts of the statement that are not parameters
 * cannot be: the function (chosen from a fixed list) and the bucket width (a
 * number of milliseconds this module computed).
 */
import type { FastifyInstance } from 'fastify';
import { PulsewireError } from '../errors/catalog.js';
import { DEVICE_ID_PATTERN } from '../protocol/limits.js';
import { classifyInfluxError } from '../storage/influx-errors.js';
import { knownDevice } from './schemas.js';
import { FIELD_BY_KIND, MEASUREMENT, TAG } from '../storage/schema.js';
import { needs } from '../operators/scopes.js';

export const AGGREGATES = ['mean', 'min', 'max', 'last', 'count'] as const;
type Aggregate = (typeof AGGREGATES)[number];
/** The numeric fields a series can have (protocol section 6): a SenML `v` is `value`, an `s` is `sum`. */
export const NUMERIC_FIELDS = ['value', 'sum'] as const;
type NumericField = (typeof NUMERIC_FIELDS)[number];

/** A default resolution aims at about this many buckets. */
export const TARGET_POINTS = 1000;
/** An explicit `every` that would make more buckets than this is refused. */
export const MAX_POINTS = 10_000;
const DEFAULT_RANGE_MS = 24 * 3600_000;

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3600_000, d: 86_400_000, w: 604_800_000 } as const;
/** Bucket widths a default resolution picks from, so buckets line up with clock boundaries. */
const NICE_MS = [1, 10, 100, 1000, 5000, 10_000, 30_000, 60_000, 300_000, 600_000, 1_800_000, 3600_000, 3 * 3600_000, 6 * 3600_000, 12 * 3600_000, 86_400_000, 604_800_000];

function badRequest(parameter: string, why: string): PulsewireError {
  return new PulsewireError('PW_ERR_BAD_REQUEST', `${parameter}: ${why}`);
}

/** ISO 8601 (with a date at least) or whole milliseconds since the epoch. */
export function parseInstant(parameter: string, text: string): number {
  const ms = /^\d{1,15}$/.test(text) ? Number(text) : /^\d{4}-\d{2}-\d{2}/.test(text) ? Date.parse(text) : Number.NaN;
  if (!Number.isFinite(ms)) throw badRequest(parameter, `${JSON.stringify(text.slice(0, 40))} is neither ISO 8601 nor epoch milliseconds`);
  return ms;
}

/** `every`: a whole number and a unit (ms, s, m, h, d, w), e.g. 30s or 5m. */
export function parseEvery(text: string): number {
  const match = /^(\d{1,9})(ms|s|m|h|d|w)$/.exec(text);
  const ms = match ? Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS] : 0;
  if (ms < 1) throw badRequest('every', 'a positive duration such as 500ms, 30s, 5m, 1h, 1d');
  return ms;
}

/** The smallest nice width that yields at most TARGET_POINTS buckets over the range. */
export function defaultEvery(rangeMs: number): number {
  const wanted = Math.ceil(rangeMs / TARGET_POINTS);
  return NICE_MS.find((width) => width >= wanted) ?? Math.ceil(wanted / 86_400_000) * 86_400_000;
}

type Query = { name: string; from?: string; to?: string; every?: string; agg: Aggregate; field: NumericField };

export async function historyRoutes(app: FastifyInstance): Promise<void> {
  app.get('/v1/devices/:id/telemetry', {
    schema: { ...needs('read'),
      summary: 'One series of a device from InfluxDB, aggregated into time buckets',
      params: { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: DEVICE_ID_PATTERN.source } } },
      querystring: {
        type: 'object',
        required: ['name'],
        properties: {
          name: { type: 'string', minLength: 1, maxLength: 128, description: 'series name (SenML bn + n)' },
          from: { type: 'string', maxLength: 40, description: 'ISO 8601 or epoch ms; default: 24 h before `to`' },
          to: { type: 'string', maxLength: 40, description: 'ISO 8601 or epoch ms, exclusive; default: now' },
          every: { type: 'string', maxLength: 12, description: `bucket width such as 30s or 5m; default: about ${TARGET_POINTS} buckets over the range` },
          agg: { type: 'string', enum: [...AGGREGATES], default: 'mean' },
          field: { type: 'string', enum: [...NUMERIC_FIELDS], default: 'value', description: 'which field: value (SenML v) or sum (SenML s)' },
        },
        additionalProperties: false,
      },
      response: {
        200: {
          type: 'object',
          properties: {
            deviceId: { type: 'string' },
            name: { type: 'string' },
            agg: { type: 'string' },
            field: { type: 'string' },
            every: { type: 'string' },
            from: { type: 'string', format: 'date-time' },
            to: { type: 'string', format: 'date-time' },
            points: { type: 'array', items: { type: 'object', properties: { time: { type: 'string', format: 'date-time' }, value: { type: 'number' } } } },
          },
        },
      },
    },
  }, async (request) => {
    const { id } = request.params as { id: string };
    const q = request.query as Query;
    await knownDevice(app.registry, id);
    const to = q.to === undefined ? Date.now() : parseInstant('to', q.to);
    const from = q.from === undefined ? to - DEFAULT_RANGE_MS : parseInstant('from', q.from);
    if (from >= to) throw badRequest('from', 'must be before to');
    const everyMs = q.every === undefined ? defaultEvery(to - from) : parseEvery(q.every);
    const buckets = Math.ceil((to - from) / everyMs);
    if (buckets > MAX_POINTS) {
      throw badRequest('every', `${q.every} over this range makes ${buckets} points, more than ${MAX_POINTS}; use a wider every or a shorter range`);
    }
    const fromIso = new Date(from).toISOString();
    const toIso = new Date(to).toISOString();
    // agg and field are from fixed lists (schema enums) and everyMs a number: none is user text.
    const influxql =
      `SELECT ${q.agg}("${FIELD_BY_KIND[q.field]}") AS "value" FROM "${MEASUREMENT.TELEMETRY}" ` +
      `WHERE "${TAG.DEVICE}" = $device AND "${TAG.NAME}" = $name AND time >= $from AND time < $to ` +
      `GROUP BY time(${everyMs}ms) fill(none)`;
    let rows: { time: Date; value: number }[];
    try {
      rows = await app.storage.influx.query<{ time: Date; value: number }>(influxql, {
        database: app.storage.database,
        placeholders: { device: id, name: q.name, from: fromIso, to: toIso },
      });
    } catch (err) {
      const failure = classifyInfluxError(err);
      throw new PulsewireError(failure.kind === 'rejected' ? 'PW_ERR_BAD_REQUEST' : 'PW_ERR_STORAGE_UNAVAILABLE', failure.detail, { cause: err });
    }
    return {
      deviceId: id,
      name: q.name,
      agg: q.agg,
      field: q.field,
      every: `${everyMs}ms`,
      from: fromIso,
      to: toIso,
      points: rows.map((row) => ({ time: row.time.toISOString(), value: row.value })),
    };
  });
}
