/**
 * GET /v1/devices/:id/series: which series a device has in InfluxDB, each
 * with its kind, unit and newest stored reading. The dashboard's device view
 * starts from it, so a device that has not sent since the hub (or the page)
 * started still gets its charts and their history, not "waiting for readings".
 */
import type { FastifyInstance } from 'fastify';
import { PulsewireError } from '../errors/catalog.js';
import { classifyInfluxError } from '../storage/influx-errors.js';
import { queryLatest } from '../storage/latest-readings.js';
import { FIELD_BY_KIND } from '../storage/schema.js';
import { parseInstant } from './history.js';
import { deviceIdParam, knownDevice } from './schemas.js';
import { needs } from '../operators/scopes.js';

/** A device has at most PULSEWIRE_MAX_NAMES_PER_DEVICE names; this bounds the answer whatever the config. */
const MAX_SERIES = 10_000;

export async function seriesRoutes(app: FastifyInstance): Promise<void> {
  app.get('/v1/devices/:id/series', {
    schema: { ...needs('read'),
      summary: 'The series a device has stored, each with its kind, unit and newest reading',
      params: deviceIdParam,
      querystring: {
        type: 'object',
        properties: {
          since: { type: 'string', maxLength: 40, description: 'only series with a reading at or after this time (ISO 8601 or epoch ms); default: PULSEWIRE_MAX_PAST_S ago' },
        },
        additionalProperties: false,
      },
      response: {
        200: {
          type: 'object',
          properties: {
            deviceId: { type: 'string' },
            series: {
              type: 'array',
              items: {
                type: 'object',
                properties: {
                  name: { type: 'string' },
                  kind: { type: 'string', enum: Object.keys(FIELD_BY_KIND) },
                  unit: { type: 'string' },
                  time: { type: 'string', format: 'date-time', description: 'time of the newest reading' },
                  value: { description: 'the newest reading: a number (value, sum), string (text; data as base64) or boolean (flag)' },
                },
              },
            },
          },
        },
      },
    },
  }, async (request) => {
    const { id } = request.params as { id: string };
    const { since } = request.query as { since?: string };
    await knownDevice(app.registry, id);
    const sinceMs = since === undefined ? Date.now() - app.config.maxPastSeconds * 1000 : parseInstant('since', since);
    let latest;
    try {
      latest = await queryLatest(app.storage.queryStream, { device: id, sinceMs, maxSeries: MAX_SERIES });
    } catch (err) {
      const failure = classifyInfluxError(err);
      throw new PulsewireError(failure.kind === 'rejected' ? 'PW_ERR_BAD_REQUEST' : 'PW_ERR_STORAGE_UNAVAILABLE', failure.detail, { cause: err });
    }
    latest.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return {
      deviceId: id,
      series: latest.map((r) => ({ name: r.name, kind: r.kind, ...(r.unit ? { unit: r.unit } : {}), time: new Date(r.t).toISOString(), value: r.v })),
    };
  });
}
