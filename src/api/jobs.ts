/**
 * Operator routes for fleet jobs (docs/jobs.md): create, read, list, the
 * job's commands and skipped devices, and cancel. Input is checked by the
 * schemas below (400 with the reason); the rules the schemas cannot say
 * (exactly one of ids or prefix, a target that matches nothing, the
 * command's size and TTL) are the service's.
 */
import type { FastifyInstance } from 'fastify';
import { COMMAND_STATUSES, type CommandStatus } from '../commands/types.js';
import { JOB_DEFAULTS, JOB_STATUSES, MAX_JOB_TARGETS, type JobStatus, type NewJob } from '../jobs/types.js';
import { DEVICE_ID_PATTERN } from '../protocol/limits.js';
import { commandView, newCommandBody } from './commands.js';
import { errorView } from './schemas.js';
import { needs } from '../operators/scopes.js';
import { audited } from '../audit/audit-hook.js';

/** Most ids one request may list; larger fleets are selected by prefix. */
const MAX_TARGET_IDS = 10_000;

const jobTarget = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ids: { type: 'array', minItems: 1, maxItems: MAX_TARGET_IDS, items: { type: 'string', pattern: DEVICE_ID_PATTERN.source } },
    prefix: { type: 'string', pattern: '^[A-Za-z0-9._-]{0,64}$' },
    onlineOnly: { type: 'boolean' },
  },
} as const;

const newJobBody = {
  type: 'object',
  required: ['command', 'target'],
  additionalProperties: false,
  properties: {
    command: newCommandBody,
    target: jobTarget,
    rolloutPerSecond: { type: 'number', minimum: 0.01, maximum: 1000, description: `commands created per second (default ${JOB_DEFAULTS.rolloutPerSecond})` },
    abortThresholdPct: { type: 'number', minimum: 0, maximum: 100, description: 'abort when more than this percentage of finished commands failed (default 100: never)' },
    abortMinFinished: { type: 'integer', minimum: 1, maximum: MAX_JOB_TARGETS, description: `finished commands needed before the threshold applies (default ${JOB_DEFAULTS.abortMinFinished})` },
  },
} as const;

export const jobView = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    status: { type: 'string', enum: [...JOB_STATUSES] },
    command: { type: 'object', properties: { ...newCommandBody.properties } },
    target: { type: 'object', properties: { ...jobTarget.properties } },
    rolloutPerSecond: { type: 'number' },
    abortThresholdPct: { type: 'number' },
    abortMinFinished: { type: 'integer' },
    total: { type: 'integer' },
    dispatched: { type: 'integer' },
    skipped: { type: 'integer' },
    counts: { type: 'object', additionalProperties: { type: 'integer' } },
    createdAt: { type: 'string', format: 'date-time' },
    completedAt: { type: 'string', format: 'date-time' },
    reason: { type: 'string' },
  },
} as const;

const jobIdParam = { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 64 } } } as const;
const limit = { type: 'integer', minimum: 1, maximum: 1000, default: 100 } as const;

export async function jobRoutes(app: FastifyInstance): Promise<void> {
  const { jobs } = app;

  app.post('/v1/jobs', {
    schema: { ...audited('job.create'), ...needs('operate'),
      summary: 'Roll one command out to many devices at a bounded rate',
      description: '201 with the job and a Location header; the rollout continues in the background (docs/jobs.md).',
      body: newJobBody,
      response: { 201: jobView, 400: errorView, 404: errorView, 409: errorView, 413: errorView },
    },
  }, async (request, reply) => {
    const job = await jobs.create(request.body as NewJob);
    return reply.code(201).header('location', `/v1/jobs/${job.id}`).send(job);
  });

  app.get('/v1/jobs', {
    schema: { ...needs('read'),
      summary: 'Jobs, newest first',
      querystring: {
        type: 'object',
        properties: { status: { type: 'string', enum: [...JOB_STATUSES] }, limit },
        additionalProperties: false,
      },
      response: { 200: { type: 'object', properties: { jobs: { type: 'array', items: jobView } } }, 400: errorView },
    },
  }, async (request) => {
    const { status, limit: n } = request.query as { status?: JobStatus; limit: number };
    return { jobs: await jobs.list(status, n) };
  });

  app.get('/v1/jobs/:id', {
    schema: { ...needs('read'), summary: 'One job with its progress counts', params: jobIdParam, response: { 200: jobView, 404: errorView } },
  }, async (request) => jobs.get((request.params as { id: string }).id));

  app.get('/v1/jobs/:id/commands', {
    schema: { ...needs('read'),
      summary: "The job's commands (one per device), in device id order",
      params: jobIdParam,
      querystring: {
        type: 'object',
        properties: { status: { type: 'string', enum: [...COMMAND_STATUSES] }, limit },
        additionalProperties: false,
      },
      response: { 200: { type: 'object', properties: { commands: { type: 'array', items: commandView } } }, 404: errorView },
    },
  }, async (request) => {
    const { status, limit: n } = request.query as { status?: CommandStatus; limit: number };
    return { commands: await jobs.commandsOf((request.params as { id: string }).id, status, n) };
  });

  app.get('/v1/jobs/:id/skipped', {
    schema: { ...needs('read'),
      summary: 'Targets that got no command, with the reason',
      params: jobIdParam,
      querystring: { type: 'object', properties: { limit }, additionalProperties: false },
      response: {
        200: { type: 'object', properties: { skipped: { type: 'array', items: { type: 'object', properties: { deviceId: { type: 'string' }, reason: { type: 'string' } } } } } },
        404: errorView,
      },
    },
  }, async (request) => {
    const { limit: n } = request.query as { limit: number };
    return { skipped: await jobs.skippedOf((request.params as { id: string }).id, n) };
  });

  app.post('/v1/jobs/:id/cancel', {
    schema: { ...audited('job.cancel'), ...needs('operate'),
      summary: 'Stop the rollout and cancel the commands still queued (409 once the job is finished)',
      params: jobIdParam,
      response: { 200: jobView, 404: errorView, 409: errorView },
    },
  }, async (request) => {
    const { id } = request.params as { id: string };
    const job = await jobs.cancel(id);
    request.log.info({ jobId: id }, 'job cancelled');
    return job;
  });
}
