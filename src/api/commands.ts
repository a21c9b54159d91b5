/**
 * Operator routes for commands (protocol section 3, COMMAND/RESULT): create,
 * read, list and cancel, with `?wait=SECONDS` long polling on create and read
 * for scripts that want the outcome in one call. Arguments and results are in
 * the JSON form of docs/json-cbor.md.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { isFinal } from '../commands/command-service.js';
import { COMMAND_STATUSES, type CommandStatus } from '../commands/types.js';
import { PulsewireError } from '../errors/catalog.js';
import { deviceIdParam, errorView, knownDevice } from './schemas.js';
import type { JsonValue } from '../state/types.js';
import { needs } from '../operators/scopes.js';
import { audited } from '../audit/audit-hook.js';

/** Long polls are bounded so a forgotten script does not hold a request forever. */
export const MAX_WAIT_SECONDS = 120;

export const commandView = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    deviceId: { type: 'string' },
    name: { type: 'string' },
    args: {},
    status: { type: 'string', enum: [...COMMAND_STATUSES] },
    result: {},
    createdAt: { type: 'string', format: 'date-time' },
    sentAt: { type: 'string', format: 'date-time' },
    completedAt: { type: 'string', format: 'date-time' },
    ttlMs: { type: 'integer' },
    timeoutMs: { type: 'integer' },
    jobId: { type: 'string' },
  },
} as const;

const commandParams = {
  type: 'object',
  required: ['id', 'cid'],
  properties: { id: deviceIdParam.properties.id, cid: { type: 'string', maxLength: 36 } },
} as const;

const waitQuery = {
  type: 'object',
  properties: { wait: { type: 'number', minimum: 0, maximum: MAX_WAIT_SECONDS } },
  additionalProperties: false,
} as const;

/** What POST /v1/devices/:id/commands accepts (also the command part of a fleet job). */
export const newCommandBody = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 128 },
    args: {},
    ttlMs: { type: 'integer', minimum: 1 },
    timeoutMs: { type: 'integer', minimum: 100, maximum: 86_400_000 },
  },
} as const;

export async function commandRoutes(app: FastifyInstance): Promise<void> {
  const { commands, registry } = app;

  const deviceOf = (request: FastifyRequest): Promise<string> => knownDevice(registry, (request.params as { id: string }).id);

  app.post('/v1/devices/:id/commands', {
    schema: { ...audited('command.create'), ...needs('operate'),
      summary: 'Send a command to a device; queued durably while it is offline',
      description: '202 with the command. With ?wait=SECONDS the answer waits until the command is final (200) or the wait ends (202). '
        + '409 PW_ERR_COMMAND_TTL_TOO_LONG when ttlMs is above PULSEWIRE_COMMAND_TTL_MS; 429 PW_ERR_COMMAND_QUEUE_FULL when the device has PULSEWIRE_COMMAND_QUEUE_MAX unfinished commands.',
      params: deviceIdParam,
      querystring: waitQuery,
      body: newCommandBody,
      response: { 200: commandView, 202: commandView, 400: errorView, 404: errorView, 409: errorView, 413: errorView, 429: errorView },
    },
  }, async (request, reply) => {
    const deviceId = await deviceOf(request);
    const body = request.body as { name: string; args?: JsonValue; ttlMs?: number; timeoutMs?: number };
    const { wait = 0 } = request.query as { wait?: number };
    const created = await commands.create(deviceId, body);
    request.log.info({ deviceId, commandId: created.id, name: created.name }, 'command queued');
    const view = wait > 0 ? (await commands.waitFinal(deviceId, created.id, wait * 1000)) ?? created : created;
    return reply.code(isFinal(view.status) && wait > 0 ? 200 : 202).send(view);
  });

  app.get('/v1/devices/:id/commands/:cid', {
    schema: { ...needs('read'),
      summary: 'One command; with ?wait=SECONDS, answers when it is final or the wait ends',
      description: '200 with the command. With ?wait=SECONDS (above 0) as on POST: 200 once it is final, 202 when the wait ends first.',
      params: commandParams,
      querystring: waitQuery,
      response: { 200: commandView, 202: commandView, 404: errorView },
    },
  }, async (request, reply) => {
    const deviceId = await deviceOf(request);
    const { cid } = request.params as { cid: string };
    const { wait = 0 } = request.query as { wait?: number };
    const view = await commands.waitFinal(deviceId, cid, wait * 1000);
    if (!view) throw new PulsewireError('PW_ERR_COMMAND_NOT_FOUND', `${deviceId}/${cid}`);
    return reply.code(wait > 0 && !isFinal(view.status) ? 202 : 200).send(view);
  });

  app.get('/v1/devices/:id/commands', {
    schema: { ...needs('read'),
      summary: "A device's commands in the order they were created",
      params: deviceIdParam,
      querystring: {
        type: 'object',
        properties: {
          status: { type: 'string', enum: [...COMMAND_STATUSES] },
          limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
        },
        additionalProperties: false,
      },
      response: { 200: { type: 'object', properties: { commands: { type: 'array', items: commandView } } }, 404: errorView },
    },
  }, async (request) => {
    const deviceId = await deviceOf(request);
    const { status, limit } = request.query as { status?: CommandStatus; limit: number };
    return { commands: await commands.list(deviceId, status, limit) };
  });

  app.delete('/v1/devices/:id/commands/:cid', {
    schema: { ...audited('command.cancel'), ...needs('operate'),
      summary: 'Cancel a queued command (409 once it was sent)',
      params: commandParams,
      response: { 200: commandView, 404: errorView, 409: errorView },
    },
  }, async (request) => {
    const deviceId = await deviceOf(request);
    const { cid } = request.params as { cid: string };
    const view = await commands.cancel(deviceId, cid);
    request.log.info({ deviceId, commandId: cid }, 'command cancelled');
    return view;
  });
}
