/**
 * Which browser origins may use operator endpoints. Browsers attach `Origin`
 * to WebSocket upgrades, EventSource and every non-GET fetch, and a cookie
 * travels with them whatever page started the request; so the origin, not the
 * cookie, tells a dashboard of ours from a foreign page riding on the
 * operator's session (CSRF, cross-site WebSocket hijacking).
 */
import type { FastifyRequest } from 'fastify';
import { PulsewireError } from '../errors/catalog.js';

export class OriginPolicy {
  readonly #allowed: ReadonlySet<string> | undefined;
  readonly #scheme: 'http' | 'https';

  /** `allowed` undefined: only the hub's own origin (the request's Host with the hub's scheme). */
  constructor(allowed: readonly string[] | undefined, tls: boolean) {
    this.#allowed = allowed === undefined ? undefined : new Set(allowed.map((origin) => origin.toLowerCase()));
    this.#scheme = tls ? 'https' : 'http';
  }

  allows(origin: string, request: FastifyRequest): boolean {
    const normalized = origin.trim().toLowerCase();
    if (this.#allowed) return this.#allowed.has(normalized);
    const host = request.headers.host;
    return host !== undefined && normalized === `${this.#scheme}://${host.toLowerCase()}`;
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
