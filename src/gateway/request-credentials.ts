/**
 * The credential check every device request goes through, WebSocket upgrade
 * or HTTP fallback alike (protocol sections 2 and 8): the per-address limiter
 * first, then authenticateDevice. Only a presented credential that fails
 * counts as a guess; a client waiting for the 401 challenge does not.
 */
import type { FastifyRequest } from 'fastify';
import type { TLSSocket } from 'node:tls';
import { PulsewireError } from '../errors/catalog.js';
import type { AuthFailureLimiter } from './auth-limiter.js';
import { authenticateDevice, type AuthDeps, type AuthSuccess } from './auth.js';

export type CredentialRefusal = { error: PulsewireError; headers: Record<string, string> };

export async function checkDeviceRequest(
  request: FastifyRequest, limiter: AuthFailureLimiter, deps: AuthDeps,
): Promise<AuthSuccess | CredentialRefusal> {
  const retryAfterMs = limiter.retryAfterMs(request.ip);
  if (retryAfterMs > 0) {
    return { error: new PulsewireError('PW_ERR_AUTH_RATE_LIMITED'), headers: { 'retry-after': String(Math.ceil(retryAfterMs / 1000)) } };
  }
  const result = await authenticateDevice({ authorization: request.headers.authorization, certificate: peerCertificate(request) }, deps);
  if (result.ok) return result;
  // A disabled device presented the right credentials: no guess, no challenge.
  if (result.error.code !== 'PW_ERR_DEVICE_AUTH') return { error: result.error, headers: {} };
  if (request.headers.authorization) limiter.recordFailure(request.ip);
  return { error: result.error, headers: { 'www-authenticate': 'Basic realm="pulsewire"' } };
}

function peerCertificate(request: FastifyRequest): { authorized: boolean; subjectCN?: string } | undefined {
  const socket = request.raw.socket as Partial<TLSSocket>;
  if (typeof socket.getPeerCertificate !== 'function') return undefined;
  const cert = socket.getPeerCertificate();
  if (!cert || !cert.subject) return undefined;
  const cn = cert.subject.CN;
  return { authorized: socket.authorized === true, subjectCN: Array.isArray(cn) ? undefined : cn };
}
