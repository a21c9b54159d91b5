/**
 * Protocol v1 messages (section 3) to and from bytes. Decoders are pure and
 * never throw: bytes in, a typed message or a PulsewireError out, so the
 * gateway maps every failure through the catalog (close 1007 / HTTP 400).
 * Encoders throw RangeError/TypeError on arguments the protocol cannot carry:
 * they run on hub-built values, so that is a programming error.
 *
 * TELEMETRY packs are not validated here: the seq is already known to be
 * valid, so a bad pack is answered with ACK 2/3 (senml.ts), not a close.
 */
import { PulsewireError } from '../errors/catalog.js';
import { decodeCbor } from './cbor-decode.js';
import { inspectCbor } from './cbor-scan.js';
import { MAX_BATCH_DEPTH, MAX_CBOR_DEPTH, MAX_COMMAND_ID_LENGTH, SEQ_MODULUS } from './limits.js';
import { CborPack } from './senml-cbor.js';
import type {
  CborMap, DeviceMessage, DesiredMessage, HubMessage, ReportedMessage, ResultMessage, TelemetryMessage,
} from './messages.js';

export type DecodeOptions = {
  /** Refuse larger input with PW_ERR_FRAME_TOO_BIG; the WebSocket layer normally enforces this already. */
  maxBytes?: number;
  /** Cap on CBOR data items (default DEFAULT_MAX_CBOR_ITEMS). */
  maxItems?: number;
};

const shape = (reason: string) => new PulsewireError('PW_ERR_MESSAGE_SHAPE', reason);

/** A non-negative integer. Integral floats (7.0) pass: liberal in what we accept. */
function isUint(x: unknown, below = Number.MAX_SAFE_INTEGER + 1): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0 && x < below;
}

function isCommandId(x: unknown): x is string {
  return typeof x === 'string' && x.length >= 1 && [...x].length <= MAX_COMMAND_ID_LENGTH;
}

function isStateMap(x: unknown): x is CborMap {
  return x instanceof Map && [...x.keys()].every((k) => typeof k === 'string' || (typeof k === 'number' && Number.isInteger(k)));
}

function arity(msg: unknown[], name: string, min: number, max: number): PulsewireError | null {
  if (msg.length >= min && msg.length <= max) return null;
  const want = min === max ? `${min}` : `${min} or ${max}`;
  return shape(`${name} must have ${want} elements, got ${msg.length}`);
}

function parseTelemetry(msg: unknown[]): TelemetryMessage | PulsewireError {
  const [, seq, pack] = msg;
  const bad = arity(msg, 'TELEMETRY', 3, 3);
  if (bad) return bad;
  if (!isUint(seq, SEQ_MODULUS)) return shape('TELEMETRY element 1 (seq) must be an unsigned integer below 2^32');
  return { type: 1, seq, pack };
}

function parseResult(msg: unknown[]): ResultMessage | PulsewireError {
  const [, commandId, status, payload] = msg;
  const bad = arity(msg, 'RESULT', 3, 4);
  if (bad) return bad;
  if (!isCommandId(commandId)) return shape('RESULT element 1 (commandId) must be text of 1 to 36 characters');
  if (!isUint(status, 4)) return shape('RESULT element 2 (status) must be 0, 1, 2 or 3');
  return msg.length === 4 ? { type: 4, commandId, status, payload } : { type: 4, commandId, status };
}

function parseReported(msg: unknown[]): ReportedMessage | PulsewireError {
  const bad = arity(msg, 'REPORTED', 2, 2);
  if (bad) return bad;
  const state = msg[1];
  if (!isStateMap(state)) return shape('REPORTED element 1 (state) must be a map with text or integer keys');
  return { type: 5, state };
}

/** One decoded device → hub message; `allowBare` is false inside an HTTP batch. */
function parseDeviceMessage(value: unknown, allowBare: boolean): DeviceMessage | PulsewireError {
  if (!Array.isArray(value)) return shape('message must be a CBOR array');
  if (value.length === 0) return shape('message is an empty array');
  const type = value[0];
  if (type instanceof Map && allowBare) return { type: 'bare-pack', pack: value };
  if (!isUint(type)) return shape('element 0 must be a message type (unsigned integer) or a SenML record (map)');
  switch (type) {
    case 1: return parseTelemetry(value);
    case 4: return parseResult(value);
    case 5: return parseReported(value);
    case 2: case 3: case 6:
      return new PulsewireError('PW_ERR_MESSAGE_DIRECTION', `message type ${type} is sent by the hub, not by a device`);
    default:
      return new PulsewireError('PW_ERR_MESSAGE_TYPE', `unknown message type ${type}`);
  }
}

function parseHubMessage(value: unknown): HubMessage | PulsewireError {
  if (!Array.isArray(value)) return shape('message must be a CBOR array');
  if (value.length === 0) return shape('message is an empty array');
  const [type, a, b, c] = value;
  if (!isUint(type)) return shape('element 0 must be a message type (unsigned integer)');
  switch (type) {
    case 2: {
      const bad = arity(value, 'ACK', 2, 4);
      if (bad) return bad;
      if (!isUint(a, SEQ_MODULUS)) return shape('ACK element 1 (seq) must be an unsigned integer below 2^32');
      if (value.length >= 3 && !isUint(b)) return shape('ACK element 2 (code) must be an unsigned integer');
      if (value.length === 4 && typeof c !== 'string') return shape('ACK element 3 (reason) must be text');
      return { type: 2, seq: a, ...(value.length >= 3 ? { code: b as number } : {}), ...(value.length === 4 ? { reason: c as string } : {}) };
    }
    case 3: {
      const bad = arity(value, 'COMMAND', 4, 4);
      if (bad) return bad;
      if (!isCommandId(a)) return shape('COMMAND element 1 (commandId) must be text of 1 to 36 characters');
      if (typeof b !== 'string') return shape('COMMAND element 2 (name) must be text');
      return { type: 3, commandId: a, name: b, args: c };
    }
    case 6: {
      const bad = arity(value, 'DESIRED', 3, 3);
      if (bad) return bad;
      if (!isUint(a)) return shape('DESIRED element 1 (version) must be an unsigned integer');
      if (!isStateMap(b)) return shape('DESIRED element 2 (state) must be a map with text or integer keys');
      return { type: 6, version: a, state: b } satisfies DesiredMessage;
    }
    case 1: case 4: case 5:
      return new PulsewireError('PW_ERR_MESSAGE_DIRECTION', `message type ${type} is sent by a device, not by the hub`);
    default:
      return new PulsewireError('PW_ERR_MESSAGE_TYPE', `unknown message type ${type}`);
  }
}

function decodeBytes(bytes: Uint8Array, opts: DecodeOptions, maxDepth = MAX_CBOR_DEPTH): { value: unknown } | PulsewireError {
  if (opts.maxBytes !== undefined && bytes.length > opts.maxBytes) {
    return new PulsewireError('PW_ERR_FRAME_TOO_BIG', `${bytes.length} bytes, at most ${opts.maxBytes}`);
  }
  // The defaults need no limits object per frame.
  if (maxDepth === MAX_CBOR_DEPTH && opts.maxItems === undefined) return decodeCbor(bytes);
  return decodeCbor(bytes, { maxDepth, ...(opts.maxItems !== undefined ? { maxItems: opts.maxItems } : {}) });
}

/**
 * A WebSocket frame that is a TELEMETRY message in its usual encoding
 * (`83 01`, seq an unsigned integer, then a definite array), with its pack
 * left as bytes (CborPack) for resolvePack to read record by record; the
 * same scan as decodeDeviceFrame's runs first, and its error is returned as
 * that one would. undefined for any other frame: decodeDeviceFrame then
 * decodes it as before (a frame both accept means the same to both).
 */
export function decodeTelemetryFrame(bytes: Uint8Array): TelemetryMessage | PulsewireError | undefined {
  if (bytes.length < 4 || bytes[0] !== 0x83 || bytes[1] !== 0x01) return undefined;
  const seqHead = bytes[2]!;
  if (seqHead >> 5 !== 0) return undefined;
  let seq: number;
  let pos: number;
  switch (seqHead & 0x1f) {
    case 24: seq = bytes[3]!; pos = 4; break;
    case 25: seq = (bytes[3]! << 8) | bytes[4]!; pos = 5; break;
    case 26: seq = bytes[3]! * 2 ** 24 + ((bytes[4]! << 16) | (bytes[5]! << 8) | bytes[6]!); pos = 7; break;
    default:
      if ((seqHead & 0x1f) >= 24) return undefined;
      seq = seqHead & 0x1f;
      pos = 3;
  }
  const packHead = bytes[pos];
  if (packHead === undefined || packHead >> 5 !== 4 || (packHead & 0x1f) > 26) return undefined;
  const scan = inspectCbor(bytes);
  if (scan.error) return scan.error;
  if (scan.indefiniteStrings.length > 0) return undefined;
  return { type: 1, seq, pack: new CborPack(bytes, pos) };
}

/** One WebSocket binary frame from a device. */
export function decodeDeviceFrame(bytes: Uint8Array, opts: DecodeOptions = {}): DeviceMessage | PulsewireError {
  const decoded = decodeBytes(bytes, opts);
  if (decoded instanceof PulsewireError) return decoded;
  const message = parseDeviceMessage(decoded.value, true);
  return message instanceof PulsewireError ? message : withExactIntegers(message, () => decodeCbor(bytes, undefined, { exactIntegers: true }));
}

/**
 * RESULT payloads and REPORTED state go to operators as JSON, where an
 * integer beyond 2^53 has an exact spelling; the validated message is
 * decoded once more with 64-bit integers as bigint (these messages are rare,
 * telemetry never pays for it).
 */
function withExactIntegers<M extends DeviceMessage>(message: M, decodeExact: () => { value: unknown } | PulsewireError): M {
  if (message.type !== 4 && message.type !== 5) return message;
  if (message.type === 4 && message.payload === undefined) return message;
  const exact = decodeExact();
  if (exact instanceof PulsewireError || !Array.isArray(exact.value)) return message;
  return message.type === 4 ? { ...message, payload: exact.value[3] } : { ...message, state: exact.value[1] as CborMap };
}

/**
 * An HTTP fallback body (section 8): an array of TELEMETRY, RESULT and
 * REPORTED messages, no bare packs. The batch array adds one level, so each
 * message still gets the full 16 levels.
 */
export function decodeDeviceBatch(bytes: Uint8Array, opts: DecodeOptions = {}): DeviceMessage[] | PulsewireError {
  const decoded = decodeBytes(bytes, opts, MAX_BATCH_DEPTH);
  if (decoded instanceof PulsewireError) return decoded;
  if (!Array.isArray(decoded.value)) return shape('body must be a CBOR array of messages');
  const messages: DeviceMessage[] = [];
  let exactBatch: { value: unknown } | PulsewireError | undefined;
  for (const [i, item] of decoded.value.entries()) {
    const msg = parseDeviceMessage(item, false);
    if (msg instanceof PulsewireError) return new PulsewireError(msg.code, `message ${i}: ${msg.detail ?? msg.message}`);
    messages.push(withExactIntegers(msg, () => {
      exactBatch ??= decodeCbor(bytes, { maxDepth: MAX_BATCH_DEPTH }, { exactIntegers: true });
      return exactBatch instanceof PulsewireError || !Array.isArray(exactBatch.value) ? exactBatch : { value: exactBatch.value[i] };
    }));
  }
  return messages;
}

/** One frame from the hub, as a device (device-sim, tests) reads it. */
export function decodeHubFrame(bytes: Uint8Array, opts: DecodeOptions = {}): HubMessage | PulsewireError {
  const decoded = decodeBytes(bytes, opts);
  return decoded instanceof PulsewireError ? decoded : parseHubMessage(decoded.value);
}

// Encoders live in encode.ts (this file is the decoding half); re-exported so codec.ts is the one entry point.
export {
  encodeAck, encodeCommand, encodeDesired, encodeHubMessage, encodeHubBatch,
  encodeTelemetry, encodeResult, encodeReported, encodeDeviceMessage,
} from './encode.js';
