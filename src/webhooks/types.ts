/**
 * What the webhooks module stores and sends: an endpoint as an operator
 * registered it, and an event as it waits in the outbox, goes out, or lands in
 * the endpoint's failed list. The delivery body is `{ id, type, time, data }`
 * (docs/webhooks.md); `id` is made once per event and kept across retries and
 * replays, so receivers dedupe by it.
 */

export const WEBHOOK_EVENT_TYPES = [
  'device.online', 'device.offline', 'command.final', 'job.finished', 'alert.firing', 'alert.resolved',
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** An endpoint, as kept in the `webhooks` bucket (the secret too: the hub signs with it). */
export type WebhookRecord = {
  id: string;
  url: string;
  events: WebhookEventType[];
  /** Only events about these devices (events without a device, job.finished, pass). */
  deviceIds?: string[];
  /** Only events about devices whose id starts with this. */
  devicePrefix?: string;
  description?: string;
  /** The HMAC key; shown to the operator once, in the answer to the registration. */
  secret: string;
  createdAt: number;
  updatedAt: number;
  paused: boolean;
  /** Why: `by an operator`, or the last failure when the hub paused it. */
  pausedReason?: string;
  pausedAt?: number;
  /** Since when every attempt failed (cleared by a success or a resume). */
  failingSince?: number;
  lastFailure?: string;
};

/** One delivery's body. */
export type WebhookEvent = { id: string; type: WebhookEventType; time: string; data: Record<string, unknown> };

/** An event waiting in an endpoint's outbox, keyed [endpointId, order key]. */
export type OutboxEntry = {
  event: WebhookEvent;
  queuedAt: number;
  attempts: number;
  /** When the first attempt failed (the retry window, PULSEWIRE_WEBHOOK_RETRY_FOR_MS, runs from queuedAt). */
  firstFailureAt?: number;
  lastFailure?: string;
};

/** An event whose retries ran out, keyed [endpointId, order key] in the failed list. */
export type FailedEntry = OutboxEntry & { failedAt: number; reason: string };
