/**
 * Operator routes for device state (protocol section 3, REPORTED/DESIRED):
 * read reported, desired, version and delta; change desired with a JSON
 * Merge Patch (RFC 7396), which reaches the device at once when it is
 * online, else when it connects.
 */
import type { FastifyInstance } from 'fastify';
import { deviceIdParam, errorView, knownDevice } from './schemas.js';
import type { JsonObject } from '../state/types.js';
import { needs } from '../operators/scopes.js';
import { audited } from '../audit/audit-hook.js';

const stateView = {
  type: 'object',
  properties: {
    deviceId: { type: 'string' },
    reported: { type: 'object', additionalProperties: true },
    desired: { type: 'object', additionalProperties: true },
    version: { type: 'integer' },
    delta: { type: 'object', additionalProperties: true },
    reportedAt: { type: 'string', format: 'date-time' },
    desiredAt: { type: 'string', format: 'date-time' },
  },
} as const;

export async function deviceStateRoutes(app: FastifyInstance): Promise<void> {
  const { deviceState, registry } = app;
  // RFC 7396's media type; plain application/json is accepted too.
  app.addContentTypeParser('application/merge-patch+json', { parseAs: 'string' }, app.getDefaultJsonParser('error', 'error'));

  app.get('/v1/devices/:id/state', {
    schema: { ...needs('read'), summary: 'Reported and desired state, desired version, and their delta', params: deviceIdParam, response: { 200: stateView, 404: errorView } },
  }, async (request) => deviceState.view(await knownDevice(registry, (request.params as { id: string }).id)));

  app.patch('/v1/devices/:id/desired', {
    schema: { ...audited('desired.patch'), ...needs('operate'),
      summary: 'Change desired state with a JSON Merge Patch (null removes a key); sent to the device',
      params: deviceIdParam,
      body: { type: 'object', additionalProperties: true },
      response: { 200: stateView, 400: errorView, 404: errorView, 413: errorView },
    },
  }, async (request) => {
    const id = await knownDevice(registry, (request.params as { id: string }).id);
    const view = await deviceState.patchDesired(id, request.body as JsonObject);
    request.log.info({ deviceId: id, version: view.version }, 'desired state changed');
    return view;
  });
}
