/**
 * Who may use operator endpoints: the bearer token (tools, Prometheus,
 * Node-RED) or the session cookie of `POST /v1/login` (the browser page),
 * and from which browser origins. Token comparison is constant-time over
 * SHA-256 digests so neither the token's content nor its length leaks
 * through timing.
 *
 * Browsers attach `Origin` to WebSocket upgrades, EventSource and every
 * non-GET fetch, and a cookie travels with them whatever page started the
 * request; so the origin, not the cookie, tells a dashboard of ours from a
 * foreign page riding on the operator's session (CSRF, cross-site WebSocket
 * hijacking). A cookie-only request that changes something must therefore
 * come from an allowed origin.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { PulsewireError } from '../errors/catalog.js';
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
      if (!match && session !== undefined && (await opts.sessions.verify(session))) {
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

export class OriginPolicy {
  readonly #allowed: ReadonlySet<string> | undefined;
  readonly #scheme: 'http' | 'https';

  /**
   * `allowed` undefined: only the hub's own origin, the request's Host with the
   * scheme the browser used: the hub's own TLS, or X-Forwarded-Proto from a
   * proxy in PULSEWIRE_TRUST_PROXY that terminates TLS in front of it.
   */
  constructor(allowed: readonly string[] | undefined, tls: boolean) {
    this.#allowed = allowed === undefined ? undefined : new Set(allowed.map((origin) => origin.toLowerCase()));
    this.#scheme = tls ? 'https' : 'http';
  }

  allows(origin: string, request: FastifyRequest): boolean {
    const normalized = origin.trim().toLowerCase();
    if (this.#allowed) return this.#allowed.has(normalized);
    const host = request.headers.host;
    const scheme = this.#scheme === 'https' ? 'https' : request.protocol;
    return host !== undefined && normalized === `${scheme}://${host.toLowerCase()}`;
  }

  /**
   * Refuses a request whose Origin is present and foreign. With `required`, a
   * missing Origin is refused too: a cookie-authenticated change must prove
   * where it comes from (every current browser sends Origin on non-GET).
   */
  check(request: FastifyRequest, required = false): void {
    const origin = request.headers.origin;
    if (origin === undefined || origin === '') {
      if (required) throw new PulsewireError('PW_ERR_ORIGIN', 'missing Origin');
      return;
    }
    if (!this.allows(origin, request)) throw new PulsewireError('PW_ERR_ORIGIN', origin.slice(0, 100));
  }
}
