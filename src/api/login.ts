/**
 * `POST /v1/login` and `POST /v1/logout`: the browser page trades the
 * operator token for an HttpOnly, SameSite=Strict session cookie (see
 * session.ts), so the token is typed once and never stored where page
 * scripts or URLs could leak it.
 */
import type { FastifyInstance } from 'fastify';
import { PulsewireError } from '../errors/catalog.js';
import type { OperatorAuth, OriginPolicy } from './operator-auth.js';
import { clearedSessionCookie, readCookie, SESSION_COOKIE, sessionCookie, type SessionKeys } from './session.js';

export type LoginRouteOptions = {
  auth: OperatorAuth;
  sessions: SessionKeys;
  origins: OriginPolicy;
  /** The hub serves TLS: the cookie gets `Secure`. */
  secure: boolean;
};

export async function loginRoutes(app: FastifyInstance, opts: LoginRouteOptions): Promise<void> {
  app.post('/v1/login', {
    schema: {
      summary: 'Trade the operator token for a session cookie (browsers)',
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
    const { token } = request.body as { token: string };
    if (!opts.auth.isOperatorToken(token)) {
      request.log.info({ remoteAddress: request.ip }, 'operator login refused');
      throw new PulsewireError('PW_ERR_OPERATOR_AUTH');
    }
    const session = opts.sessions.issue();
    return reply.code(204).header('set-cookie', sessionCookie(session.value, session.maxAgeS, opts.secure)).send();
  });

  app.post('/v1/logout', {
    schema: { summary: 'End the browser session and clear its cookie', security: [], response: { 204: { type: 'null' } } },
  }, async (request, reply) => {
    opts.origins.check(request);
    const session = readCookie(request.headers.cookie, SESSION_COOKIE);
    if (session !== undefined) opts.sessions.revoke(session);
    return reply.code(204).header('set-cookie', clearedSessionCookie(opts.secure)).send();
  });
}
