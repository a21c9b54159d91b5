/**
 * Message shapes of protocol v1 (../shared/protocol-v1.md, section 3), as the
 * hub and device-sim see them after decoding. Pure types and constants.
 */

export const SUBPROTOCOL = 'pulsewire.v1';
export const DEVICE_PATH = '/v1/device';

export const MessageType = {
  TELEMETRY: 1,
  ACK: 2,
  COMMAND: 3,
  RESULT: 4,
  REPORTED: 5,
  DESIRED: 6,
} as const;

export const AckCode = {
  ACCEPTED: 0,
  DUPLICATE: 1,
  MALFORMED_PACK: 2,
  TIME_OUT_OF_RANGE: 3,
  RATE_LIMITED: 4,
  TOO_MANY_NAMES: 5,
} as const;
export type AckCodeValue = (typeof AckCode)[keyof typeof AckCode];

export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  UNSUPPORTED_DATA: 1003,
  INVALID_PAYLOAD: 1007,
  POLICY: 1008,
  TOO_BIG: 1009,
  INTERNAL_ERROR: 1011,
  RESTARTING: 1012,
  REPLACED: 4000,
  /** The device's credentials changed (an operator rotated its secret): authenticate again, with the new secret. */
  REAUTHENTICATE: 4001,
} as const;

export const ResultStatus = {
  RECEIVED: 0,
  SUCCEEDED: 1,
  FAILED: 2,
  REJECTED: 3,
} as const;

/** A CBOR map as decoded: keys are text or integers, values any CBOR item. */
export type CborMap = Map<string | number, unknown>;

/** device → hub */
export type TelemetryMessage = { type: 1; seq: number; pack: unknown };
export type ResultMessage = { type: 4; commandId: string; status: number; payload?: unknown };
export type ReportedMessage = { type: 5; state: CborMap };
/** A bare SenML pack (no envelope): stored, never acknowledged. */
export type BarePackMessage = { type: 'bare-pack'; pack: unknown[] };
export type DeviceMessage = TelemetryMessage | ResultMessage | ReportedMessage | BarePackMessage;

/** hub → device */
export type AckMessage = { type: 2; seq: number; code?: number; reason?: string };
export type CommandMessage = { type: 3; commandId: string; name: string; args: unknown };
export type DesiredMessage = { type: 6; version: number; state: CborMap | Record<string, unknown> };
export type HubMessage = AckMessage | CommandMessage | DesiredMessage;

/** The kind of value a resolved SenML record carries, and its InfluxDB field. */
export type ReadingKind = 'value' | 'text' | 'flag' | 'data' | 'sum';

/** One resolved SenML record (RFC 8428 section 4.6), validated and ready to store. */
export type Reading = {
  /** bn + n, validated against RFC 8428 name rules, at most 128 characters. */
  name: string;
  /** u or bu, when given. */
  unit?: string;
  /** Resolved time in whole microseconds since the Unix epoch. */
  timeUs: number;
  kind: ReadingKind;
  /** number for value/sum, string for text, boolean for flag, bytes for data. */
  value: number | string | boolean | Uint8Array;
};
