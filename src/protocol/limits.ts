/**
 * The protocol's fixed numbers and configurable defaults (protocol-v1.md).
 * One place so the gateway, the HTTP fallback, device-sim and the docs agree;
 * configuration overrides the "DEFAULT_" ones, the others are part of v1.
 */

/** Largest message in bytes unless configured otherwise (section 1). */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024;
/** Records per SenML pack (section 3). */
export const DEFAULT_MAX_RECORDS = 1024;
/** How far ahead of the hub's clock a reading may be: 5 minutes. */
export const DEFAULT_MAX_FUTURE_SECONDS = 300;
/** How far behind the hub's clock a reading may be: 30 days. */
export const DEFAULT_MAX_PAST_SECONDS = 30 * 24 * 60 * 60;
/** Unacknowledged TELEMETRY messages a device may have in flight. */
export const MAX_IN_FLIGHT = 32;

/**
 * Deepest CBOR nesting allowed. Depth counts arrays and maps only: the
 * top-level message array is depth 1, a TELEMETRY pack depth 2, its records 3.
 */
export const MAX_CBOR_DEPTH = 16;
/** An HTTP-fallback batch (protocol section 8) is an array of messages: one level deeper than a frame. */
export const MAX_BATCH_DEPTH = MAX_CBOR_DEPTH + 1;
/**
 * Data items per message. A 64 KiB frame holds at most 65,536 one-byte items,
 * so this only bites when the message limit is raised; it bounds decode work.
 */
export const DEFAULT_MAX_CBOR_ITEMS = 65_536;

/** seq is an unsigned integer below 2^32 and wraps to 0. */
export const SEQ_MODULUS = 2 ** 32;
export const MAX_COMMAND_ID_LENGTH = 36;
export const MAX_SENML_NAME_LENGTH = 128;
export const MAX_SENML_UNIT_LENGTH = 32;
export const MAX_SENML_TEXT_LENGTH = 1024;
/** SenML times below 2^28 seconds are relative to "now" (RFC 8428 4.5.3). */
export const SENML_RELATIVE_TIME_LIMIT = 2 ** 28;
/** The SenML version this hub understands (RFC 8428: 10). */
export const SENML_VERSION = 10;

/** A device id: 1 to 64 characters of [A-Za-z0-9._-] (section 2). */
export const DEVICE_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

export function isValidDeviceId(id: unknown): id is string {
  return typeof id === 'string' && DEVICE_ID_PATTERN.test(id);
}
