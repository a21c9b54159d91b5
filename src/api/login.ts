/**
 * `POST /v1/login` and `POST /v1/logout`: the browser page trades an
 * operator key (or the bootstrap PULSEWIRE_OPERATOR_TOKEN) for an HttpOnly,
 * SameSite=Strict session cookie (see session.ts), so the key is typed once
 * and never stored where page scripts or URLs could leak it. The page then
 * asks `GET /v1/whoami` for the key's scope and shows only what it may do.
 */
import type { FastifyInstance } from 'fastify';
import { PulsewireError } from '../errors/catalog.js';
import { AuthFailureLimiter } from '../gateway/auth-limiter.js';
import type { Operator } from '../operators/operator-keys.js';
import type { OperatorAuth, OriginPolicy } from './operator-auth.js';
import { clearedSessionCookie, readCookie, SESSION_COOKIE, sessionCookie, type SessionKeys } from './session.js';

export type LoginRouteOptions = {
  auth: OperatorAuth;
  sessions: SessionKeys;
  origins: OriginPolicy;
  /** The hub serves TLS: the cookie gets `Secure`. */
  secure: boolean;
  /** Failed logins per address before 429, for how long, and how many addresses are remembered (the device handshake's settings). */
  maxFailures: number;
  blockMs: number;
  maxAddresses: number;
};

declare module 'fastify' {
  interface FastifyInstance {
    /** The login form's failure limiter (metrics read its size). */
    loginLimiter: AuthFailureLimiter;
  }
}

export async function loginRoutes(app: FastifyInstance, opts: LoginRouteOptions): Promise<void> {
  // A login form is where a token gets guessed; the same per-address limit as device logins.
  const limiter = new AuthFailureLimiter({ maxFailures: opts.maxFailures, blockMs: opts.blockMs, maxAddresses: opts.maxAddresses });
  app.decorate('loginLimiter', limiter);
  app.post('/v1/login', {
    schema: {
      summary: 'Trade an operator key for a session cookie (browsers)',
      security: [],
      body: {
        type: 'object',
        required: ['token'],
        properties: { token: { type: 'string', minLength: 1, maxLength: 1024 } },
        additionalProperties: false,
      },
      response: { 204: { type: 'null' } },
    },
  }, async (request, reply) => {
    // A foreign page must not log the browser into its own session either (login CSRF).
    opts.origins.check(request);
    const retryAfterMs = limiter.retryAfterMs(request.ip);
    if (retryAfterMs > 0) {
      reply.header('retry-after', String(Math.ceil(retryAfterMs / 1000)));
      throw new PulsewireError('PW_ERR_AUTH_RATE_LIMITED');
    }
    const { token } = request.body as { token: string };
    let operator: Operator;
    try {
      operator = await opts.auth.authenticate(token);
    } catch (err) {
      limiter.recordFailure(request.ip);
      request.log.info({ remoteAddress: request.ip }, 'operator login refused');
      throw err;
    }
    const session = opts.sessions.issue({ keyId: operator.keyId, ...(operator.expiresAt !== undefined ? { expiresAt: operator.expiresAt } : {}) });
    return reply.code(204).header('set-cookie', sessionCookie(session.value, session.maxAgeS, opts.secure || request.protocol === 'https')).send();
  });

  app.post('/v1/logout', {
    schema: { summary: 'End the browser session and clear its cookie', security: [], response: { 204: { type: 'null' } } },
  }, async (request, reply) => {
    opts.origins.check(request);
    const session = readCookie(request.headers.cookie, SESSION_COOKIE);
    if (session !== undefined) await opts.sessions.revoke(session);
    return reply.code(204).header('set-cookie', clearedSessionCookie(opts.secure || request.protocol === 'https')).send();
  });
}
