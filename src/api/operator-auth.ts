/**
 * Who may use operator endpoints, and for what: an operator key as a bearer
 * token (tools, Prometheus, Node-RED) or the session cookie of `POST
 * /v1/login` (the browser page), from which browser origins, and whether the
 * key's scope covers the route (the route's `x-scope`, operators/scopes.ts).
 * The key is looked up on every request, so a revoked or expired one is
 * refused at once, on every node.
 *
 * Browsers attach `Origin` to WebSocket upgrades, EventSource and every
 * non-GET fetch, and a cookie travels with them whatever page started the
 * request; so the origin, not the cookie, tells a dashboard of ours from a
 * foreign page riding on the operator's session (CSRF, cross-site WebSocket
 * hijacking). A cookie-only request that changes something must therefore
 * come from an allowed origin.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { isPulsewireError, PulsewireError } from '../errors/catalog.js';
import type { Operator, OperatorKeys } from '../operators/operator-keys.js';
import { isScope, SCOPE_FIELD, scopeAllows, type Scope } from '../operators/scopes.js';
import { readCookie, SESSION_COOKIE, type SessionKeys } from './session.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by requireOperator: who made this request (the audit log names them). */
    operator: Operator | undefined;
  }
}

export type OperatorAuthOptions = {
  keys: OperatorKeys;
  sessions: SessionKeys;
  origins: OriginPolicy;
};

export type OperatorAuth = {
  /** The onRequest hook of every operator endpoint. */
  requireOperator(request: FastifyRequest, reply: FastifyReply): Promise<void>;
  /** The operator holding `candidate` (login); throws PulsewireError (401) when it lets nobody in. */
  authenticate(candidate: string): Promise<Operator>;
};

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The scope a route states; one that states none needs admin (closed by default, and the OpenAPI walk in the tests flags it). */
export function routeScope(request: FastifyRequest): Scope {
  const stated = (request.routeOptions.schema as Record<string, unknown> | undefined)?.[SCOPE_FIELD];
  return isScope(stated) ? stated : 'admin';
}

export function operatorAuth(opts: OperatorAuthOptions): OperatorAuth {
  const identify = async (request: FastifyRequest): Promise<Operator> => {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '');
    if (match) return opts.keys.fromToken(match[1]!);
    const session = readCookie(request.headers.cookie, SESSION_COOKIE);
    const keyId = session === undefined ? undefined : await opts.sessions.keyIdOf(session);
    if (keyId === undefined) throw new PulsewireError('PW_ERR_OPERATOR_AUTH');
    const operator = await opts.keys.fromKeyId(keyId);
    if (!SAFE_METHODS.has(request.method)) opts.origins.check(request, true);
    return operator;
  };
  return {
    authenticate: (candidate) => opts.keys.fromToken(candidate),
    async requireOperator(request, reply) {
      let operator: Operator;
      try {
        operator = await identify(request);
      } catch (err) {
        if (isPulsewireError(err) && err.spec.http === 401) reply.header('www-authenticate', 'Bearer realm="pulsewire-operator"');
        throw err;
      }
      request.operator = operator;
      const needed = routeScope(request);
      if (!scopeAllows(operator.scope, needed)) {
        throw new PulsewireError('PW_ERR_SCOPE', `${request.method} ${request.routeOptions.url} needs scope ${needed}; key "${operator.name}" has ${operator.scope}`);
      }
    },
  };
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
