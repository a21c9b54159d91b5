/**
 * The one catalog of Pulsewire errors. Every failure the hub reports to a
 * device or an operator is a PulsewireError with a stable code; this table is
 * the only place that says which HTTP status, ACK code or WebSocket close code
 * goes with it, so firmware and operators see the same answer everywhere.
 */

export type ErrorSpec = {
  /** Short human text; the `detail` of an instance adds specifics. */
  readonly message: string;
  /** HTTP status when the error answers an HTTP request. */
  readonly http?: number;
  /** ACK code when the error answers one TELEMETRY message (protocol 3). */
  readonly ack?: number;
  /** Close code when the error ends a device or operator WebSocket. */
  readonly close?: number;
};

export const ERRORS = {
  // Frames and CBOR (protocol sections 1 and 3): the connection is closed.
  PW_ERR_TEXT_FRAME: { message: 'text frames are not allowed, send binary CBOR', close: 1003 },
  PW_ERR_FRAME_TOO_BIG: { message: 'message larger than the configured maximum', close: 1009, http: 413 },
  PW_ERR_CBOR_MALFORMED: { message: 'not well-formed CBOR', close: 1007, http: 400 },
  PW_ERR_CBOR_TAG: { message: 'CBOR tags are not allowed', close: 1007, http: 400 },
  PW_ERR_CBOR_TOO_DEEP: { message: 'CBOR nesting deeper than 16 levels', close: 1007, http: 400 },
  PW_ERR_CBOR_TOO_MANY_ITEMS: { message: 'too many CBOR data items in one message', close: 1007, http: 400 },
  PW_ERR_MESSAGE_SHAPE: { message: 'invalid message', close: 1007, http: 400 },
  PW_ERR_MESSAGE_TYPE: { message: 'unknown message type', close: 1007, http: 400 },
  PW_ERR_MESSAGE_DIRECTION: { message: 'message type not allowed in this direction', close: 1007, http: 400 },

  // One TELEMETRY message rejected or deferred: answered with an ACK code.
  PW_ERR_DUPLICATE: { message: 'duplicate, already accepted', ack: 1 },
  PW_ERR_PACK_MALFORMED: { message: 'malformed SenML pack', ack: 2 },
  PW_ERR_TIME_RANGE: { message: 'time out of range', ack: 3 },
  PW_ERR_RATE_LIMITED: { message: 'rate limited, resend later', ack: 4, http: 429, close: 1008 },
  PW_ERR_TOO_MANY_NAMES: { message: 'too many distinct names for this device', ack: 5 },
  PW_ERR_TOO_MANY_SERIES: { message: 'hub at its series limit, no new series', ack: 5 },
  PW_ERR_STORAGE_UNAVAILABLE: { message: 'storage unavailable, resend later', ack: 4, http: 503 },
  PW_ERR_STORAGE_REJECTED: { message: 'storage rejected the readings', ack: 2 },
  PW_ERR_SPOOL_FULL: { message: 'hub spool full, resend later', ack: 4, http: 503 },

  // Device handshake (protocol section 2): answered before the upgrade.
  PW_ERR_SUBPROTOCOL: { message: 'offer the WebSocket subprotocol pulsewire.v1 (Sec-WebSocket-Protocol: pulsewire.v1)', http: 400 },
  PW_ERR_DEVICE_AUTH: { message: 'unknown device or wrong secret', http: 401 },
  PW_ERR_DEVICE_DISABLED: { message: 'device disabled by an operator', http: 403, close: 1008 },
  PW_ERR_AUTH_RATE_LIMITED: { message: 'too many failed attempts from this address, retry later', http: 429 },
  PW_ERR_NO_SOCKET_HERE: { message: 'no WebSocket at this path', http: 404 },
  // Admission (gateway/admission.ts): answered 503 with Retry-After, before the credentials are checked.
  PW_ERR_CONNECTIONS_FULL: { message: 'hub at its device connection limit, retry later', http: 503 },
  PW_ERR_ADDRESS_CONNECTIONS_FULL: { message: 'too many device connections from this address, retry later', http: 503 },
  PW_ERR_HANDSHAKES_BUSY: { message: 'too many device handshakes at once, retry later', http: 503 },
  PW_ERR_ACCEPT_RATE: { message: 'too many device connections per second, retry later', http: 503 },

  // HTTP fallback (protocol section 8; docs/http-fallback.md).
  PW_ERR_MEDIA_TYPE: { message: 'send the messages as Content-Type: application/cbor', http: 415 },
  PW_ERR_BATCH_TOO_BIG: { message: 'more TELEMETRY messages in one request than the 32 a device may have in flight', http: 413 },

  // Device sessions ended by the hub.
  PW_ERR_REPLACED: { message: 'replaced by a newer connection of the same device', close: 4000 },
  PW_ERR_REVOKED: { message: 'device removed or credentials revoked', close: 1008 },
  PW_ERR_REAUTHENTICATE: { message: 'credentials changed, authenticate again', close: 4001 },
  PW_ERR_SHUTDOWN: { message: 'hub going away', close: 1001 },
  PW_ERR_PING_TIMEOUT: { message: 'no pong before the next ping' },
  PW_ERR_INTERNAL: { message: 'hub internal error', close: 1011, http: 500 },

  // Operator API.
  PW_ERR_OPERATOR_AUTH: { message: 'missing or wrong operator bearer token or session', http: 401 },
  PW_ERR_ORIGIN: { message: 'request origin not allowed', http: 403 },
  // Operator keys (docs/operators.md): a key below the route's scope, or one that no longer works.
  PW_ERR_SCOPE: { message: "the operator key's scope does not allow this", http: 403 },
  PW_ERR_KEY_REVOKED: { message: 'operator key revoked', http: 401, close: 1008 },
  PW_ERR_KEY_EXPIRED: { message: 'operator key expired', http: 401, close: 1008 },
  PW_ERR_KEY_NOT_FOUND: { message: 'no such operator key', http: 404 },
  PW_ERR_KEYS_FULL: { message: 'too many operator keys; delete revoked or unused ones first', http: 409 },
  PW_ERR_DEVICE_NOT_FOUND: { message: 'no such device', http: 404 },
  PW_ERR_BAD_REQUEST: { message: 'bad request', http: 400 },
  PW_ERR_BODY_TOO_BIG: { message: 'request body larger than the operator API accepts', http: 413 },
  PW_ERR_NOT_READY: { message: 'not ready', http: 503 },
  PW_ERR_COMMAND_NOT_FOUND: { message: 'no such command for this device', http: 404 },
  PW_ERR_COMMAND_QUEUE_FULL: { message: 'command queue of this device is full', http: 429 },
  PW_ERR_COMMAND_TTL_TOO_LONG: { message: 'ttlMs longer than commands may wait', http: 409 },
  PW_ERR_COMMAND_NOT_QUEUED: { message: 'only a queued command can be cancelled', http: 409 },
  PW_ERR_COMMAND_TOO_BIG: { message: 'command larger than the largest device message', http: 400 },
  PW_ERR_STATE_TOO_BIG: { message: 'desired state larger than the largest device message', http: 400 },
  PW_ERR_JOB_NOT_FOUND: { message: 'no such job', http: 404 },
  PW_ERR_JOB_FINISHED: { message: 'job already finished', http: 409 },
  PW_ERR_JOB_NO_TARGETS: { message: 'the job target matches no device', http: 400 },
  // Alert rules (docs/webhooks.md, "Alert rules").
  PW_ERR_RULE_NOT_FOUND: { message: 'no such alert rule', http: 404 },
  PW_ERR_RULE_INVALID: { message: 'invalid alert rule', http: 400 },
  PW_ERR_RULES_FULL: { message: 'too many alert rules; delete unused ones first', http: 409 },

  // Outgoing webhooks (docs/webhooks.md).
  PW_ERR_WEBHOOK_NOT_FOUND: { message: 'no such webhook endpoint', http: 404 },
  PW_ERR_WEBHOOK_URL: { message: 'webhook URL not accepted', http: 400 },
  PW_ERR_WEBHOOK_ADDRESS_REFUSED: { message: 'webhook URL resolves to a loopback, private, link-local or metadata address (PULSEWIRE_WEBHOOK_ALLOW_PRIVATE allows them)', http: 400 },
  PW_ERR_WEBHOOKS_FULL: { message: 'too many webhook endpoints (PULSEWIRE_WEBHOOK_MAX_ENDPOINTS); delete unused ones first', http: 409 },

  // Live stream for operators (docs/live-stream.md).
  PW_ERR_LIVE_SUBSCRIBE: { message: 'invalid live-stream subscription', http: 400 },
  PW_ERR_LIVE_TOO_SLOW: { message: 'live-stream consumer too slow', close: 1013 },

  // Configuration: stops the hub at start.
  PW_ERR_CONFIG: { message: 'invalid configuration' },
  PW_ERR_INFLUXD_MISSING: { message: 'influxd is not installed' },

  // Cluster mode (NATS JetStream).
  PW_ERR_NATS_MISSING: { message: 'nats-server is not installed' },
  PW_ERR_NATS_UNAVAILABLE: { message: 'NATS unavailable', http: 503 },
  PW_ERR_NATS_UNREACHABLE: { message: 'cannot reach NATS at start' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

export class PulsewireError extends Error {
  readonly code: ErrorCode;
  readonly detail: string | undefined;

  constructor(code: ErrorCode, detail?: string, options?: { cause?: unknown }) {
    super(detail ? `${ERRORS[code].message}: ${detail}` : ERRORS[code].message, options);
    this.name = 'PulsewireError';
    this.code = code;
    this.detail = detail;
  }

  get spec(): ErrorSpec {
    return ERRORS[this.code];
  }

  /** Reason text for a close frame: at most 123 bytes by RFC 6455. */
  get closeReason(): string {
    return truncateUtf8(this.detail ?? ERRORS[this.code].message, 123);
  }
}

export function isPulsewireError(value: unknown, code?: ErrorCode): value is PulsewireError {
  return value instanceof PulsewireError && (code === undefined || value.code === code);
}

export function truncateUtf8(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text) <= maxBytes) return text;
  let out = text.slice(0, maxBytes);
  while (Buffer.byteLength(out) > maxBytes) out = out.slice(0, -1);
  return out;
}
