/**
 * Authentication of operator endpoints: the bearer token (tools, Prometheus,
 * Node-RED) or the session cookie of `POST /v1/login` (the browser page).
 * Token comparison is constant-time over SHA-256 digests so neither the
 * token's content nor its length leaks through timing. A request
 * authenticated by cookie alone that changes something must come from an
 * allowed origin, since a browser sends the cookie whichever page asked.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { PulsewireError } from '../errors/catalog.js';
import type { OriginPolicy } from './origin-check.js';
import { readCookie, SESSION_COOKIE, type SessionKeys } from './session.js';

export type OperatorAuthOptions = {
  token: string;
  sessions: SessionKeys;
  origins: OriginPolicy;
};

export type OperatorAuth = {
  /** The onRequest hook of every operator endpoint. */
  requireOperator(request: FastifyRequest, reply: FastifyReply): Promise<void>;
  /** True when `candidate` is the operator token (login). */
  isOperatorToken(candidate: string): boolean;
};

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function operatorAuth(opts: OperatorAuthOptions): OperatorAuth {
  const expected = digest(opts.token);
  const isOperatorToken = (candidate: string) => timingSafeEqual(digest(candidate), expected);
  return {
    isOperatorToken,
    async requireOperator(request, reply) {
      const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '');
      if (match && isOperatorToken(match[1]!)) return;
      const session = readCookie(request.headers.cookie, SESSION_COOKIE);
      if (!match && session !== undefined && opts.sessions.verify(session)) {
        if (!SAFE_METHODS.has(request.method)) opts.origins.check(request, true);
        return;
      }
      reply.header('www-authenticate', 'Bearer realm="pulsewire-operator"');
      throw new PulsewireError('PW_ERR_OPERATOR_AUTH');
    },
  };
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
