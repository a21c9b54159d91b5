/**
 * The one place that turns errors into operator-facing HTTP answers:
 * `{ error: { code, message } }` with the status the catalog assigns.
 * Schema validation failures become PW_ERR_BAD_REQUEST with fastify's reason.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { isPulsewireError } from '../errors/catalog.js';

export function errorHandler(error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply): void {
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
