/**
 * Records every call to a route that states an audit action (`x-audit` in its
 * schema, shown in the OpenAPI document) once its answer is decided and
 * before it is sent, so an answered call has its entry stored. Calls refused
 * for their scope are recorded too (outcome PW_ERR_SCOPE): someone holding a
 * key tried. Calls without a valid key are not: anyone could fill the log
 * with them (the auth limiter and the logs cover those).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AuditLog } from './audit-log.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by a handler whose action is more precise than its route's (a PUT that rotated a secret). */
    auditAction: string | undefined;
  }
}

/** The schema field a state-changing route names its audit action in. */
export const AUDIT_FIELD = 'x-audit';

/** Actions that create something whose id is only in the answer (`{id}`): the target names it. */
const CREATES = new Set(['command.create', 'job.create', 'key.create', 'webhook.create', 'rule.create']);

/** A route's schema fragment: `schema: { ...audited('command.create'), ... }`. */
export function audited(action: string): { [AUDIT_FIELD]: string } {
  return { [AUDIT_FIELD]: action };
}

export function auditHook(audit: AuditLog) {
  return async function recordAudit(request: FastifyRequest, reply: FastifyReply, payload: unknown): Promise<unknown> {
    const action = request.auditAction ?? (request.routeOptions.schema as Record<string, unknown> | undefined)?.[AUDIT_FIELD];
    const operator = request.operator;
    if (typeof action !== 'string' || operator === undefined) return payload;
    const status = reply.statusCode;
    const body = parseJson(payload);
    const params = (request.params ?? {}) as { id?: string; cid?: string };
    let target = [params.id, params.cid].filter((part) => part !== undefined).join('/');
    if (CREATES.has(action) && status < 300 && typeof body?.id === 'string') target = target ? `${target}/${body.id}` : body.id;
    const detail = detailOf(action, request.body);
    try {
      await audit.record({
        keyId: operator.keyId, key: operator.name, action, target,
        outcome: status < 400 ? 'ok' : typeof body?.error?.code === 'string' ? body.error.code : `HTTP ${status}`,
        status, source: request.ip, ...(detail !== undefined ? { detail } : {}),
      });
    } catch (err) {
      // The call already took effect; what is lost is its record, which the error log keeps instead.
      request.log.error({ err, action, target, keyId: operator.keyId, status }, 'audit entry not stored');
    }
    return payload;
  };
}

/** What some actions add: the command's name, a new key's name and scope, a webhook's destination. */
function detailOf(action: string, requestBody: unknown): string | undefined {
  const body = (requestBody ?? {}) as { name?: unknown; scope?: unknown; command?: { name?: unknown } };
  if (action === 'command.create' && typeof body.name === 'string') return body.name;
  if (action === 'job.create' && typeof body.command?.name === 'string') return body.command.name;
  if ((action === 'rule.create' || action === 'rule.update') && typeof body.name === 'string') return body.name;
  if (action === 'key.create' && typeof body.name === 'string') return `${body.name} (${String(body.scope)})`;
  // Where the fleet's events will go, by origin only (a receiver's path or query may hold its token).
  if ((action === 'webhook.create' || action === 'webhook.update') && typeof (requestBody as { url?: unknown } | undefined)?.url === 'string') {
    return urlOrigin((requestBody as { url: string }).url);
  }
  if (action === 'device.rotate') {
    const rotation = requestBody as { keepEnrollment?: unknown; graceS?: unknown } | undefined;
    return `grace ${Number(rotation?.graceS ?? 0)} s${rotation?.keepEnrollment === true ? ', enrollment kept' : ''}`;
  }
  return undefined;
}

function urlOrigin(raw: string): string | undefined {
  try {
    return new URL(raw).origin;
  } catch {
    return undefined;
  }
}

function parseJson(payload: unknown): { id?: unknown; error?: { code?: unknown } } | undefined {
  if (typeof payload !== 'string' || !payload.startsWith('{')) return undefined;
  try {
    return JSON.parse(payload) as { id?: unknown; error?: { code?: unknown } };
  } catch {
    return undefined;
  }
}
