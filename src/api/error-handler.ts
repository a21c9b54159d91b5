/**
 * The one place that turns errors into operator-facing HTTP answers:
 * `{ error: { code, message } }` with the status the catalog assigns.
 * Schema validation failures become PW_ERR_BAD_REQUEST with fastify's reason
 * (an undeclared field or query parameter is named, with the known ones);
 * a body over the route's limit PW_ERR_BODY_TOO_BIG naming the limit.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { isPulsewireError, PulsewireError } from '../errors/catalog.js';

export function errorHandler(error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply): void {
  if ((error as FastifyError).code === 'FST_ERR_CTP_BODY_TOO_LARGE') error = new PulsewireError('PW_ERR_BODY_TOO_BIG', bodyLimitDetail(request));
  if (isPulsewireError(error)) {
    const status = error.spec.http ?? 500;
    if (status >= 500) request.log.error({ err: error }, 'request failed');
    void reply.code(status).send({ error: { code: error.code, message: error.message } });
    return;
  }
  const fastifyError = error as FastifyError;
  if (fastifyError.validation || (fastifyError.statusCode && fastifyError.statusCode < 500)) {
    const status = fastifyError.statusCode ?? 400;
    const message = fastifyError.validation ? validationMessage(fastifyError, request) : error.message;
    void reply.code(status).send({ error: { code: status === 400 ? 'PW_ERR_BAD_REQUEST' : fastifyError.code, message } });
    return;
  }
  request.log.error({ err: error }, 'unexpected error');
  void reply.code(500).send({ error: { code: 'PW_ERR_INTERNAL', message: 'hub internal error' } });
}

/** Why fastify refused a body as too large: the route's limit, and the setting behind it when there is one. */
export function bodyLimitDetail(request: FastifyRequest, setting?: string): string {
  return `the body may hold at most ${request.routeOptions.bodyLimit} bytes${setting ? ` (${setting})` : ''}`;
}

type SchemaNode = { properties?: Record<string, SchemaNode>; items?: SchemaNode };

/**
 * fastify says "body must NOT have additional properties" without saying
 * which: name it, and the fields the schema knows at that place, e.g.
 * `body has an unknown field "ttlms" (known: name, args, ttlMs, timeoutMs)`.
 */
function validationMessage(error: FastifyError, request: FastifyRequest): string {
  const first = error.validation?.[0];
  const unknown = (first?.params as { additionalProperty?: unknown } | undefined)?.additionalProperty;
  if (first?.keyword !== 'additionalProperties' || typeof unknown !== 'string') return error.message;
  const context = error.validationContext ?? 'request';
  const what = context === 'querystring' ? 'query parameter' : 'field';
  let node = (request.routeOptions.schema as Record<string, SchemaNode | undefined> | undefined)?.[context];
  for (const step of first.instancePath.split('/').slice(1)) node = /^[0-9]+$/.test(step) ? node?.items : node?.properties?.[step];
  const known = Object.keys(node?.properties ?? {});
  return `${context}${first.instancePath} has an unknown ${what} "${unknown}"${known.length > 0 ? ` (known: ${known.join(', ')})` : ''}`;
}
