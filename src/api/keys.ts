/**
 * Operator API keys (docs/operators.md): an admin creates a key with a name, a
 * scope and an optional expiry, and gets its secret once, in the answer to
 * the create; the hub keeps only a digest. Listing shows every key with its
 * created-at, last-used-at (to a minute) and whether it was revoked; revoking
 * refuses the key at once and ends its live streams. `GET /v1/whoami` tells
 * any key its own name and scope (the dashboard hides what the scope cannot do).
 */
import type { FastifyInstance } from 'fastify';
import { PulsewireError } from '../errors/catalog.js';
import type { ApiKeyRecord, ApiKeyStore } from '../operators/api-key-store.js';
import { needs, SCOPES } from '../operators/scopes.js';
import { errorView } from './schemas.js';
import { audited } from '../audit/audit-hook.js';

const keyView = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    scope: { type: 'string', enum: SCOPES },
    createdAt: { type: 'string', format: 'date-time' },
    expiresAt: { type: 'string', format: 'date-time', nullable: true },
    lastUsedAt: { type: 'string', format: 'date-time', nullable: true, description: 'to the minute; written lazily' },
    revokedAt: { type: 'string', format: 'date-time', nullable: true },
  },
} as const;

const keyIdParam = { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^[0-9a-f]{16}$' } } } as const;

export async function keyRoutes(app: FastifyInstance, opts: { store: ApiKeyStore }): Promise<void> {
  const { store } = opts;

  app.post('/v1/keys', {
    schema: {
      ...audited('key.create'), ...needs('admin'),
      summary: 'Create an operator key; its secret is in this answer only',
      body: {
        type: 'object',
        required: ['name', 'scope'],
        properties: {
          name: { type: 'string', minLength: 1, maxLength: 100, pattern: '^[^\\u0000-\\u001f\\u007f]+$' },
          scope: { type: 'string', enum: SCOPES },
          expiresAt: { type: 'string', format: 'date-time' },
        },
        additionalProperties: false,
      },
      response: { 201: { type: 'object', properties: { ...keyView.properties, key: { type: 'string' } } }, 400: errorView },
    },
  }, async (request, reply) => {
    const body = request.body as { name: string; scope: ApiKeyRecord['scope']; expiresAt?: string };
    const { record, token } = await store.create({
      name: body.name, scope: body.scope, ...(body.expiresAt !== undefined ? { expiresAt: Date.parse(body.expiresAt) } : {}),
    });
    request.log.info({ keyId: record.id, name: record.name, scope: record.scope }, 'operator key created');
    return reply.code(201).send({ ...view(record), key: token });
  });

  app.get('/v1/keys', {
    schema: { ...needs('admin'), summary: 'Operator keys, revoked ones included (never their secrets)', response: { 200: { type: 'object', properties: { keys: { type: 'array', items: keyView } } } } },
  }, async () => ({ keys: (await store.list()).sort((a, b) => a.createdAt - b.createdAt).map(view) }));

  app.delete('/v1/keys/:id', {
    schema: { ...audited('key.revoke'), ...needs('admin'), summary: 'Revoke an operator key: refused at once, its live streams closed (1008)', params: keyIdParam, response: { 204: { type: 'null' }, 404: errorView } },
  }, async (request, reply) => {
    const { id } = request.params as { id: string };
    const revoked = await store.revoke(id);
    if (!revoked) throw new PulsewireError('PW_ERR_KEY_NOT_FOUND', id);
    request.log.info({ keyId: id, name: revoked.name }, 'operator key revoked');
    return reply.code(204).send();
  });

  app.get('/v1/whoami', {
    schema: {
      ...needs('read'),
      summary: 'The key this request was made with: its name and scope',
      response: { 200: { type: 'object', properties: { id: { type: 'string' }, name: { type: 'string' }, scope: { type: 'string', enum: SCOPES }, expiresAt: { type: 'string', format: 'date-time', nullable: true } } } },
    },
  }, async (request) => {
    const operator = request.operator!;
    return { id: operator.keyId, name: operator.name, scope: operator.scope, expiresAt: iso(operator.expiresAt) };
  });
}

function view(record: ApiKeyRecord) {
  return {
    id: record.id, name: record.name, scope: record.scope, createdAt: iso(record.createdAt),
    expiresAt: iso(record.expiresAt), lastUsedAt: iso(record.lastUsedAt), revokedAt: iso(record.revokedAt),
  };
}

function iso(ms: number | undefined): string | null {
  return ms === undefined ? null : new Date(ms).toISOString();
}
