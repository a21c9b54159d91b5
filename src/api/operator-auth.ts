/**
 * Bearer-token check for operator endpoints. The comparison is constant-time
 * over SHA-256 digests so neither the token's content nor its length leaks
 * through timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { PulsewireError } from '../errors/catalog.js';

export function bearerTokenCheck(expectedToken: string) {
  const expected = digest(expectedToken);
  return async function requireOperator(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const header = request.headers.authorization ?? '';
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (match && timingSafeEqual(digest(match[1]!), expected)) return;
    reply.header('www-authenticate', 'Bearer realm="pulsewire-operator"');
    throw new PulsewireError('PW_ERR_OPERATOR_AUTH');
  };
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
