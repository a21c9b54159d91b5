/**
 * Browser security headers on every HTTP answer an operator's browser can
 * get (the dashboard page and its assets, the operator API, the live
 * stream's SSE, errors), set by helmet. What they are for:
 * - a content security policy that lets the page load scripts, styles and
 *   connections from the hub's own origin only, so an injected script or a
 *   hostile third-party asset has nowhere to run from or send to;
 * - `frame-ancestors 'none'` and X-Frame-Options DENY: no other site can
 *   frame the page (clickjacking the command and desired-state forms);
 * - X-Content-Type-Options nosniff: a JSON answer holding device-chosen
 *   text is never sniffed into HTML or script;
 * - no Referer leaves the page; Cross-Origin-Opener/Resource-Policy
 *   same-origin keep other sites' windows and loads away from it.
 *
 * Device routes opt out (`config: { securityHeaders: false }`): a device reads none of this, and
 * on the HTTP fallback it would be half a kilobyte per answer on a metered
 * link. Strict-Transport-Security only when the hub itself serves TLS (over
 * plain HTTP it is ignored by browsers, and a proxy that terminates TLS
 * sets its own), without includeSubDomains: the hub cannot speak for its
 * host's other names. `upgrade-insecure-requests` is left out: a hub
 * served over plain HTTP on a LAN would have its page's own requests
 * rewritten to an https:// that does not answer.
 */
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import helmet, { type HelmetOptions } from 'helmet';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** false: the route answers without browser security headers (device routes). */
    securityHeaders?: boolean;
  }
}

/** The page's policy. uPlot positions its legend and cursor with inline styles, hence 'unsafe-inline' for styles only. */
export const CONTENT_SECURITY_POLICY = {
  defaultSrc: ["'self'"],
  scriptSrc: ["'self'"],
  scriptSrcAttr: ["'none'"],
  styleSrc: ["'self'", "'unsafe-inline'"],
  imgSrc: ["'self'", 'data:'],
  fontSrc: ["'self'"],
  // 'self' covers the live stream's ws:// and wss:// on the same host (CSP Level 3).
  connectSrc: ["'self'"],
  objectSrc: ["'none'"],
  frameAncestors: ["'none'"],
  baseUri: ["'none'"],
  formAction: ["'self'"],
};

const HSTS_MAX_AGE_S = 180 * 24 * 3600;

export function securityHeaderOptions(opts: { tls: boolean }): HelmetOptions {
  return {
    contentSecurityPolicy: { useDefaults: false, directives: CONTENT_SECURITY_POLICY },
    xFrameOptions: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
    strictTransportSecurity: opts.tls ? { maxAge: HSTS_MAX_AGE_S, includeSubDomains: false } : false,
  };
}

/**
 * Sets the headers on every answer, 404s and errors included, before any
 * handler runs. helmet's middleware is built once here: @fastify/helmet
 * built it again for every request (parsing the policy's directives each
 * time: 13 KB of garbage per API call, 6.6% of what the hub allocated under
 * 1,000 commands/s).
 */
export const securityHeaders = fp(async (app: FastifyInstance, opts: { tls: boolean }) => {
  const setHeaders = helmet(securityHeaderOptions(opts));
  app.addHook('onRequest', (request, reply, done) => {
    if (request.routeOptions.config.securityHeaders === false) return done();
    // helmet throws rather than passing an error on (since 8.1); it only ever calls back with none.
    setHeaders(request.raw, reply.raw, () => done());
  });
}, { name: 'security-headers' });
