/**
 * GET /v1/dead-letters: the points InfluxDB refused (field type conflicts,
 * partial writes), newest first, with the reason and the device, so an
 * operator can see what was set aside and fix the schema or the firmware.
 */
import type { FastifyInstance } from 'fastify';
import { PulsewireError } from '../errors/catalog.js';
import { MAX_DEAD_LETTER_PAGE } from '../storage/dead-letters.js';
import { needs } from '../operators/scopes.js';

const pointView = {
  type: 'object',
  properties: {
    measurement: { type: 'string' },
    tags: { type: 'object', additionalProperties: { type: 'string' } },
    fields: { type: 'object', additionalProperties: true },
    timestamp: { type: 'string', description: 'microseconds since the epoch' },
  },
} as const;

const letterView = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    at: { type: 'string', format: 'date-time' },
    deviceId: { type: 'string' },
    reason: { type: 'string' },
    points: { type: 'array', items: pointView },
  },
} as const;

export async function deadLetterRoutes(app: FastifyInstance): Promise<void> {
  app.get('/v1/dead-letters', {
    schema: { ...needs('admin'),
      summary: 'Points InfluxDB refused, newest first, paged',
      querystring: {
        type: 'object',
        properties: {
          limit: { type: 'integer', minimum: 1, maximum: MAX_DEAD_LETTER_PAGE, default: 100 },
          cursor: { type: 'string', pattern: '^[0-9]{1,15}$' },
        },
        additionalProperties: false,
      },
      response: {
        200: { type: 'object', properties: { deadLetters: { type: 'array', items: letterView }, nextCursor: { type: 'string', nullable: true } } },
      },
    },
  }, async (request) => {
    const q = request.query as { limit: number; cursor?: string };
    const before = q.cursor === undefined ? undefined : Number(q.cursor);
    if (before !== undefined && !Number.isSafeInteger(before)) throw new PulsewireError('PW_ERR_BAD_REQUEST', 'invalid cursor');
    const page = app.spool.deadLetterPage(q.limit, before);
    return {
      deadLetters: page.deadLetters.map((letter) => ({ ...letter, at: new Date(letter.at).toISOString() })),
      nextCursor: page.nextCursor === undefined ? null : String(page.nextCursor),
    };
  });
}
