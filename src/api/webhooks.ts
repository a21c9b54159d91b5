/**
 * `/v1/webhooks` (docs/webhooks.md): an admin registers an endpoint (URL,
 * event types, an optional device filter) and gets its signing secret once,
 * in the answer; then lists, reads, changes, pauses, resumes and deletes it,
 * reads its failed list and replays it. Admin only: an endpoint sends the
 * fleet's events out of the hub. Every change is audited.
 */
import type { FastifyInstance } from 'fastify';
import { audited } from '../audit/audit-hook.js';
import { needs } from '../operators/scopes.js';
import { DEVICE_ID_PATTERN } from '../protocol/limits.js';
import { WEBHOOK_EVENT_TYPES, type FailedEntry, type WebhookRecord } from '../webhooks/types.js';
import type { EndpointInput } from '../webhooks/endpoint-store.js';
import { QUEUED_COUNT_CAP } from '../webhooks/outbox.js';
import type { Webhooks } from '../webhooks/webhooks.js';
import { errorView } from './schemas.js';

const nullableTime = { type: 'string', format: 'date-time', nullable: true } as const;

const endpointView = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    url: { type: 'string' },
    events: { type: 'array', items: { type: 'string', enum: WEBHOOK_EVENT_TYPES } },
    deviceIds: { type: 'array', items: { type: 'string' }, nullable: true },
    devicePrefix: { type: 'string', nullable: true },
    description: { type: 'string', nullable: true },
    createdAt: { type: 'string', format: 'date-time' },
    updatedAt: { type: 'string', format: 'date-time' },
    paused: { type: 'boolean' },
    pausedReason: { type: 'string', nullable: true, description: '`by an operator`, or why the hub paused it' },
    pausedAt: nullableTime,
    failingSince: { ...nullableTime, description: 'since when every attempt failed; absent while deliveries succeed' },
    lastFailure: { type: 'string', nullable: true },
    queued: { type: 'integer', description: `events waiting for delivery, counted up to ${QUEUED_COUNT_CAP} (that figure means at least as many)` },
  },
} as const;

const eventView = {
  type: 'object',
  properties: {
    id: { type: 'string' }, type: { type: 'string', enum: WEBHOOK_EVENT_TYPES }, time: { type: 'string', format: 'date-time' },
    data: { type: 'object', additionalProperties: true },
  },
} as const;

const failedView = {
  type: 'object',
  properties: {
    cursor: { type: 'string', description: 'pass as `after` to read on from here' },
    event: eventView,
    queuedAt: { type: 'string', format: 'date-time' },
    failedAt: { type: 'string', format: 'date-time' },
    attempts: { type: 'integer' },
    reason: { type: 'string' },
  },
} as const;

const idParam = { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^wh_[0-9a-f]{16}$' } } } as const;
const eventTypes = { type: 'array', minItems: 1, maxItems: WEBHOOK_EVENT_TYPES.length, items: { type: 'string', enum: WEBHOOK_EVENT_TYPES } } as const;
const deviceIds = { type: 'array', minItems: 1, maxItems: 1000, items: { type: 'string', pattern: DEVICE_ID_PATTERN.source } } as const;
const devicePrefix = { type: 'string', minLength: 1, maxLength: 128 } as const;
const description = { type: 'string', maxLength: 200 } as const;
const url = { type: 'string', minLength: 8, maxLength: 2048, description: 'http(s); its host must not resolve to a private address unless PULSEWIRE_WEBHOOK_ALLOW_PRIVATE' } as const;
const nullable = <T extends object>(schema: T) => ({ ...schema, nullable: true }) as const;

export async function webhookRoutes(app: FastifyInstance, opts: { webhooks: Webhooks }): Promise<void> {
  const { webhooks } = opts;
  const { endpoints, outbox } = webhooks;
  const show = async (record: WebhookRecord) => view(record, await outbox.queued(record.id));

  app.post('/v1/webhooks', {
    schema: {
      ...audited('webhook.create'), ...needs('admin'),
      summary: 'Register a webhook endpoint; its signing secret is in this answer only',
      body: {
        type: 'object', required: ['url', 'events'], additionalProperties: false,
        properties: { url, events: eventTypes, deviceIds, devicePrefix, description },
      },
      response: { 201: { type: 'object', properties: { ...endpointView.properties, secret: { type: 'string' } } }, 400: errorView, 409: errorView },
    },
  }, async (request, reply) => {
    const body = request.body as EndpointInput;
    const record = await endpoints.create({ ...body, url: await webhooks.checkUrl(body.url) });
    // The origin only: a receiver's path or query often carries its own token (chat and incident tools' webhook URLs).
    request.log.info({ webhook: record.id, origin: new URL(record.url).origin, events: record.events }, 'webhook endpoint registered');
    return reply.code(201).send({ ...view(record, 0), secret: record.secret });
  });

  app.get('/v1/webhooks', {
    schema: { ...needs('admin'), summary: 'Webhook endpoints (never their secrets)', response: { 200: { type: 'object', properties: { webhooks: { type: 'array', items: endpointView } } } } },
  }, async () => ({ webhooks: await Promise.all(endpoints.all().sort((a, b) => a.createdAt - b.createdAt).map(show)) }));

  app.get('/v1/webhooks/:id', {
    schema: { ...needs('admin'), summary: 'One webhook endpoint: its state, why it is paused, how many events wait', params: idParam, response: { 200: endpointView, 404: errorView } },
  }, async (request) => show(await endpoints.get((request.params as { id: string }).id)));

  app.patch('/v1/webhooks/:id', {
    schema: {
      ...audited('webhook.update'), ...needs('admin'),
      summary: 'Change a webhook endpoint (null removes a filter or the description)',
      params: idParam,
      body: {
        type: 'object', additionalProperties: false, minProperties: 1,
        properties: { url, events: eventTypes, deviceIds: nullable(deviceIds), devicePrefix: nullable(devicePrefix), description: nullable(description) },
      },
      response: { 200: endpointView, 400: errorView, 404: errorView },
    },
  }, async (request) => {
    const { id } = request.params as { id: string };
    const patch = { ...(request.body as Record<string, unknown>) };
    if (typeof patch.url === 'string') patch.url = await webhooks.checkUrl(patch.url);
    return show(await endpoints.update(id, patch));
  });

  app.delete('/v1/webhooks/:id', {
    schema: { ...audited('webhook.delete'), ...needs('admin'), summary: 'Delete a webhook endpoint with its queued and failed events', params: idParam, response: { 204: { type: 'null' }, 404: errorView } },
  }, async (request, reply) => {
    const { id } = request.params as { id: string };
    await endpoints.delete(id);
    await outbox.dropEndpoint(id);
    request.log.info({ webhook: id }, 'webhook endpoint deleted');
    return reply.code(204).send();
  });

  app.post('/v1/webhooks/:id/pause', {
    schema: { ...audited('webhook.pause'), ...needs('admin'), summary: 'Pause deliveries; events are not queued while paused', params: idParam, response: { 200: endpointView, 404: errorView } },
  }, async (request) => show(await endpoints.pause((request.params as { id: string }).id, 'by an operator')));

  app.post('/v1/webhooks/:id/resume', {
    schema: { ...audited('webhook.resume'), ...needs('admin'), summary: 'Resume deliveries, starting with what was queued when it paused', params: idParam, response: { 200: endpointView, 404: errorView } },
  }, async (request) => show(await endpoints.resume((request.params as { id: string }).id)));

  app.get('/v1/webhooks/:id/failed', {
    schema: {
      ...needs('admin'), summary: 'Events whose retries ran out, oldest first, paged', params: idParam,
      querystring: { type: 'object', additionalProperties: false, properties: { after: { type: 'string', maxLength: 200 }, limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } } },
      response: { 200: { type: 'object', properties: { events: { type: 'array', items: failedView } } }, 404: errorView },
    },
  }, async (request) => {
    const { id } = request.params as { id: string };
    const query = request.query as { after?: string; limit: number };
    await endpoints.get(id);
    const page = await outbox.failedList(id, { limit: query.limit, ...(query.after !== undefined ? { after: query.after } : {}) });
    return { events: page.map(({ key, entry }) => failedItem(key, entry)) };
  });

  app.post('/v1/webhooks/:id/replay', {
    schema: {
      ...audited('webhook.replay'), ...needs('admin'),
      summary: 'Queue failed events again (all, or those named), with their ids, after what is queued',
      params: idParam,
      body: { type: 'object', nullable: true, additionalProperties: false, properties: { eventIds: { type: 'array', minItems: 1, maxItems: 1000, items: { type: 'string', maxLength: 64 } } } },
      response: { 200: { type: 'object', properties: { replayed: { type: 'integer' } } }, 404: errorView },
    },
  }, async (request) => {
    const { id } = request.params as { id: string };
    await endpoints.get(id);
    const ids = (request.body as { eventIds?: string[] } | undefined)?.eventIds;
    return { replayed: await outbox.replay(id, ids ? new Set(ids) : undefined) };
  });
}

function view(record: WebhookRecord, queued: number) {
  return {
    id: record.id, url: record.url, events: record.events, deviceIds: record.deviceIds ?? null, devicePrefix: record.devicePrefix ?? null,
    description: record.description ?? null, createdAt: iso(record.createdAt), updatedAt: iso(record.updatedAt), paused: record.paused,
    pausedReason: record.pausedReason ?? null, pausedAt: isoOrNull(record.pausedAt), failingSince: isoOrNull(record.failingSince),
    lastFailure: record.lastFailure ?? null, queued,
  };
}

function failedItem(cursor: string, entry: FailedEntry) {
  return { cursor, event: entry.event, queuedAt: iso(entry.queuedAt), failedAt: iso(entry.failedAt), attempts: entry.attempts, reason: entry.reason };
}

const iso = (ms: number) => new Date(ms).toISOString();
const isoOrNull = (ms: number | undefined) => (ms === undefined ? null : iso(ms));
