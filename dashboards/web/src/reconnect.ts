/** The live client's pure parts: backoff and the SSE address (no DOM, so unit tests import them). */
import type { Subscription } from './types.js';

export const DEFAULT_BASE_DELAY_MS = 500;
export const DEFAULT_MAX_DELAY_MS = 30_000;

/** Exponential backoff with jitter: attempt 1 waits about base, then doubles up to max. */
export function backoffMs(attempt: number, baseMs: number, maxMs: number, random = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling * (0.5 + random() * 0.5));
}

export function sseUrl(sub: Subscription): string {
  const params = new URLSearchParams();
  if (sub.devices?.length) params.set('devices', sub.devices.join(','));
  if (sub.names?.length) params.set('names', sub.names.join(','));
  const query = params.toString();
  return `/v1/live/sse${query ? `?${query}` : ''}`;
}

