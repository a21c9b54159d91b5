/**
 * The one place that turns errors into operator-facing HTTP answers:
 * `{ error: { code, message } }` with the status the catalog assigns.
 * Schema validation failures become PW_ERR_BAD_REQUEST with fastify's reason;
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
    void reply.code(status).send({ error: { code: status === 400 ? 'PW_ERR_BAD_REQUEST' : fastifyError.code, message: error.message } });
    return;
  }
  request.log.error({ err: error }, 'unexpected error');
  void reply.code(500).send({ error: { code: 'PW_ERR_INTERNAL', message: 'hub internal error' } });
}

/** Why fastify refused a body as too large: the route's limit, and the setting behind it when there is one. */
export function bodyLimitDetail(request: FastifyRequest, setting?: string): string {
  return `the body may hold at most ${request.routeOptions.bodyLimit} bytes${setting ? ` (${setting})` : ''}`;
}
