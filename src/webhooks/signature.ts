/**
 * Signing of deliveries, the way Stripe signs its events: one header
 * `Pulsewire-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>` where the HMAC
 * is over `<t>.<body>` with the endpoint's secret. The timestamp is inside
 * the signed text, so a receiver that rejects old timestamps rejects replays,
 * and one that compares the HMAC in constant time rejects forgeries
 * (docs/webhooks.md has the receiver's side, which a test runs).
 */
import { createHmac, randomBytes } from 'node:crypto';

export const SIGNATURE_HEADER = 'pulsewire-signature';
export const EVENT_ID_HEADER = 'pulsewire-event-id';
export const EVENT_TYPE_HEADER = 'pulsewire-event-type';

/** A new endpoint secret: 32 random bytes, prefixed so it is recognisable in a secrets scanner. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64url')}`;
}

/** The header value for `body` sent at `nowMs`. */
export function signatureHeader(secret: string, body: string, nowMs: number): string {
  const t = Math.floor(nowMs / 1000);
  const v1 = createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');
  return `t=${t},v1=${v1}`;
}
