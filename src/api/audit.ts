/**
 * `GET /v1/audit`: the audit log (audit/audit-log.ts), newest first, paged by
 * cursor, filtered by key, action, target, outcome and time. Admin only: it
 * tells who did what to which device.
 */
import type { FastifyInstance } from 'fastify';
import { AUDIT_CURSOR, type AuditLog } from '../audit/audit-log.js';
import { needs } from '../operators/scopes.js';
import { errorView } from './schemas.js';
import { PulsewireError } from '../errors/catalog.js';

const entryView = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    at: { type: 'string', format: 'date-time' },
    keyId: { type: 'string' },
    key: { type: 'string', description: 'the key\'s name' },
    action: { type: 'string' },
    target: { type: 'string' },
    outcome: { type: 'string', description: '`ok` or the error code of the answer' },
    status: { type: 'integer' },
    source: { type: 'string', description: 'the caller\'s address' },
    detail: { type: 'string', nullable: true },
  },
} as const;

export async function auditRoutes(app: FastifyInstance, opts: { audit: AuditLog }): Promise<void> {
  app.get('/v1/audit', {
    schema: {
      ...needs('admin'),
      summary: 'The audit log of state-changing operator calls, newest first, paged',
      querystring: {
        type: 'object',
        properties: {
          key: { type: 'string', maxLength: 100, description: 'a key\'s name' },
          keyId: { type: 'string', maxLength: 32 },
          action: { type: 'string', maxLength: 64, description: 'e.g. command.create, device.register, key.revoke' },
          target: { type: 'string', maxLength: 300, description: 'a device, job or key id (a device\'s commands included)' },
          outcome: { type: 'string', maxLength: 64, description: 'ok, or an error code' },
          from: { type: 'string', format: 'date-time' },
          to: { type: 'string', format: 'date-time' },
          limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
          cursor: { type: 'string', pattern: AUDIT_CURSOR.source },
        },
        additionalProperties: false,
      },
      response: { 200: { type: 'object', properties: { entries: { type: 'array', items: entryView }, nextCursor: { type: 'string', nullable: true } } }, 400: errorView },
    },
  }, async (request) => {
    const q = request.query as { key?: string; keyId?: string; action?: string; target?: string; outcome?: string; from?: string; to?: string; limit: number; cursor?: string };
    const from = q.from === undefined ? undefined : Date.parse(q.from);
    const to = q.to === undefined ? undefined : Date.parse(q.to);
    if (from !== undefined && to !== undefined && from >= to) throw new PulsewireError('PW_ERR_BAD_REQUEST', 'from must be before to');
    const page = await opts.audit.page({
      limit: q.limit,
      ...pick(q, ['key', 'keyId', 'action', 'target', 'outcome', 'cursor']),
      ...(from !== undefined ? { from } : {}), ...(to !== undefined ? { to } : {}),
    });
    return { entries: page.entries.map((e) => ({ ...e, at: new Date(e.at).toISOString(), detail: e.detail ?? null })), nextCursor: page.nextCursor ?? null };
  });
}

function pick<T extends object, K extends keyof T>(from: T, keys: K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const key of keys) if (from[key] !== undefined) out[key] = from[key];
  return out;
}
