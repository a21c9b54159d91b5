/**
 * Protocol v1 messages to bytes (section 3), byte for byte as the section 7
 * vectors. Hub → device: ACK, COMMAND, DESIRED; device → hub (device-sim and
 * tests): TELEMETRY, RESULT, REPORTED. Arguments are checked against the
 * protocol and refused with RangeError/TypeError, so the hub can never send
 * a frame a conforming device must reject.
 */
import { encodeCbor, encodeHead } from './cbor-encode.js';
import { MAX_COMMAND_ID_LENGTH, SEQ_MODULUS } from './limits.js';
import type { CborMap, DeviceMessage, HubMessage } from './messages.js';

type State = CborMap | Record<string, unknown>;

function checkUint(name: string, value: number, below = Number.MAX_SAFE_INTEGER + 1): void {
  if (!Number.isSafeInteger(value) || value < 0 || value >= below) {
    throw new RangeError(`${name} must be an unsigned integer below ${below}, got ${value}`);
  }
}

function checkCommandId(commandId: string): void {
  if (typeof commandId !== 'string' || commandId.length === 0 || [...commandId].length > MAX_COMMAND_ID_LENGTH) {
    throw new RangeError(`commandId must be text of 1 to ${MAX_COMMAND_ID_LENGTH} characters`);
  }
}

function checkState(state: State): void {
  const plain = typeof state === 'object' && state !== null && Object.getPrototypeOf(state) === Object.prototype;
  if (!(state instanceof Map) && !plain) throw new TypeError('state must be a Map or a plain object');
}

/** `[2, seq]` when accepted without a reason (`820207`), else `[2, seq, code]` or `[2, seq, code, reason]`. */
export function encodeAck(seq: number, code = 0, reason?: string): Uint8Array {
  checkUint('seq', seq, SEQ_MODULUS);
  checkUint('code', code);
  if (reason !== undefined) return encodeCbor([2, seq, code, reason]);
  return encodeCbor(code === 0 ? [2, seq] : [2, seq, code]);
}

/** `[3, commandId, name, args]`; args undefined is sent as null ("none"). */
export function encodeCommand(commandId: string, name: string, args: unknown = null): Uint8Array {
  checkCommandId(commandId);
  if (typeof name !== 'string') throw new TypeError('command name must be text');
  return encodeCbor([3, commandId, name, args === undefined ? null : args]);
}

/** `[6, version, state]`: the whole desired state. */
export function encodeDesired(version: number, state: State): Uint8Array {
  checkUint('version', version);
  checkState(state);
  return encodeCbor([6, version, state]);
}

/**
 * `[1, seq, pack]`. Records are Maps with integer labels (see senmlRecord) or
 * plain objects with text labels; values that must stay float64 even when
 * integral can be wrapped with float64().
 */
export function encodeTelemetry(seq: number, records: readonly unknown[]): Uint8Array {
  checkUint('seq', seq, SEQ_MODULUS);
  return encodeCbor([1, seq, records]);
}

/** `[4, commandId, status]` or, with a payload, `[4, commandId, status, payload]`. */
export function encodeResult(commandId: string, status: number, payload?: unknown): Uint8Array {
  checkCommandId(commandId);
  checkUint('status', status, 4);
  return encodeCbor(payload === undefined ? [4, commandId, status] : [4, commandId, status, payload]);
}

/** `[5, state]`: a JSON Merge Patch of the reported state. */
export function encodeReported(state: State): Uint8Array {
  checkState(state);
  return encodeCbor([5, state]);
}

export function encodeHubMessage(msg: HubMessage): Uint8Array {
  switch (msg.type) {
    case 2: return encodeAck(msg.seq, msg.code ?? 0, msg.reason);
    case 3: return encodeCommand(msg.commandId, msg.name, msg.args);
    case 6: return encodeDesired(msg.version, msg.state);
  }
}

export function encodeDeviceMessage(msg: DeviceMessage): Uint8Array {
  switch (msg.type) {
    case 1: return Array.isArray(msg.pack) ? encodeTelemetry(msg.seq, msg.pack) : encodeCbor([1, msg.seq, msg.pack]);
    case 4: return encodeResult(msg.commandId, msg.status, msg.payload);
    case 5: return encodeReported(msg.state);
    case 'bare-pack': return encodeCbor(msg.pack);
  }
}

/**
 * The HTTP fallback answer (section 8): a CBOR array of hub messages. Built
 * by splicing each message's encoding after one array head, so every element
 * is byte-identical to the WebSocket frame for the same message.
 */
export function encodeHubBatch(messages: readonly HubMessage[]): Uint8Array {
  const parts = messages.map(encodeHubMessage);
  const head = encodeHead(4, messages.length);
  const out = new Uint8Array(head.length + parts.reduce((n, p) => n + p.length, 0));
  out.set(head, 0);
  let offset = head.length;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}
