/**
 * A small, strict CBOR encoder for what the hub and device-sim send.
 *
 * Why not cbor-x's Encoder: it emits tags for Date (1), Set (258), Error and
 * RegExp (27), typed arrays (64-86), Uint8Array outside Buffer (64) and
 * bigints over 64 bits (2/3); extensions added with its module-global
 * addExtension() would leak tags into our frames; and integers of 2^32 and
 * above come out as float64. The protocol forbids tags and firmware expects
 * integers, so this encoder knows exactly one mapping and refuses the rest:
 * - null; undefined (f7) except as a plain-object property, which is omitted
 *   as JSON.stringify does; booleans.
 * - numbers: safe integers as major type 0/1 in the shortest form; any other
 *   number (fractions, NaN, infinities, beyond 2^53) as float64 (fb), as the
 *   section 7 vectors do for 23.5. float64(x) forces fb for integral values.
 * - bigint within 64 bits as an integer; strings as UTF-8 text; Uint8Array
 *   (and Buffer) as byte strings; arrays; Map (any encodable keys) and plain
 *   objects (text keys) as maps.
 * - Map keys sorted by their encoded bytes (RFC 8949 4.2.1), so the output
 *   does not depend on insertion order: the SenML vector's key order
 *   (0, 1, 2, -2, -3) is exactly that order.
 * - Nesting deeper than MAX_CBOR_DEPTH throws: the hub never sends what a
 *   device must refuse (this also stops cycles).
 * Anything else (Date, Set, class instances, functions...) throws TypeError:
 * encoders run on hub-built values, so that is a programming error.
 */
import { MAX_CBOR_DEPTH } from './limits.js';

/** A number that must be encoded as a float64 even when it is integral. */
export class Float64 {
  constructor(readonly value: number) {}
}
export const float64 = (value: number): Float64 => new Float64(value);

const utf8 = new TextEncoder();

class Output {
  buf = new Uint8Array(128);
  len = 0;
  reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }
  byte(b: number): void {
    this.reserve(1);
    this.buf[this.len++] = b;
  }
  bytes(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
  result(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

/** Scratch for the big-endian bytes of 8-byte heads and floats (the encoder is synchronous, so one serves every call). */
const scratch = new DataView(new ArrayBuffer(8));
const scratchBytes = new Uint8Array(scratch.buffer);

/** Writes a head (major type + argument) in its shortest form. */
function writeHead(out: Output, major: number, arg: number | bigint): void {
  if (typeof arg === 'bigint' && arg <= BigInt(Number.MAX_SAFE_INTEGER)) arg = Number(arg);
  const m = major << 5;
  if (typeof arg === 'number' && arg < 24) return out.byte(m | arg);
  if (typeof arg === 'number' && arg < 0x100) return (out.byte(m | 24), out.byte(arg));
  if (typeof arg === 'number' && arg < 0x10000) return (out.byte(m | 25), out.byte(arg >> 8), out.byte(arg & 0xff));
  if (typeof arg === 'number' && arg < 2 ** 32) {
    // Every ACK has a 4-byte seq here once seqs pass 2^16: no DataView per frame.
    return (out.byte(m | 26), out.byte(arg >>> 24), out.byte((arg >>> 16) & 0xff), out.byte((arg >>> 8) & 0xff), out.byte(arg & 0xff));
  }
  scratch.setBigUint64(0, BigInt(arg));
  out.byte(m | 27);
  out.bytes(scratchBytes);
}

/** The bytes of a head alone; used to rewrite indefinite-length strings. */
export function encodeHead(major: number, arg: number): Uint8Array {
  const out = new Output();
  writeHead(out, major, arg);
  return out.result();
}

function writeFloat64(out: Output, value: number): void {
  scratch.setFloat64(0, value);
  out.byte(0xfb);
  out.bytes(scratchBytes);
}

function isPlainObject(value: object): value is Record<string, unknown> {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

function writeMap(out: Output, entries: Array<[unknown, unknown]>, depth: number): void {
  const encoded = entries.map(([key, value]) => {
    const keyOut = new Output();
    writeItem(keyOut, key, depth + 1);
    return { key: keyOut.result(), value };
  });
  encoded.sort((a, b) => compareBytes(a.key, b.key));
  writeHead(out, 5, encoded.length);
  for (const { key, value } of encoded) {
    out.bytes(key);
    writeItem(out, value, depth + 1);
  }
}

/** depth: nesting of the container this item would open (top-level container = 1). */
function writeItem(out: Output, value: unknown, depth: number): void {
  switch (typeof value) {
    case 'undefined':
      return out.byte(0xf7);
    case 'boolean':
      return out.byte(value ? 0xf5 : 0xf4);
    case 'number':
      if (Number.isSafeInteger(value)) return value >= 0 ? writeHead(out, 0, value) : writeHead(out, 1, -1 - value);
      return writeFloat64(out, value);
    case 'bigint':
      if (value >= 0n && value < 2n ** 64n) return writeHead(out, 0, value);
      if (value < 0n && value >= -(2n ** 64n)) return writeHead(out, 1, -1n - value);
      throw new RangeError('CBOR encode: bigint outside 64 bits');
    case 'string': {
      const bytes = utf8.encode(value);
      writeHead(out, 3, bytes.length);
      return out.bytes(bytes);
    }
    case 'object':
      break;
    default:
      throw new TypeError(`CBOR encode: cannot encode a ${typeof value}`);
  }
  if (value === null) return out.byte(0xf6);
  if (value instanceof Float64) return writeFloat64(out, value.value);
  if (value instanceof Uint8Array) {
    writeHead(out, 2, value.length);
    return out.bytes(value);
  }
  if (depth > MAX_CBOR_DEPTH) throw new RangeError(`CBOR encode: nesting deeper than ${MAX_CBOR_DEPTH}`);
  if (Array.isArray(value)) {
    writeHead(out, 4, value.length);
    for (const item of value) writeItem(out, item, depth + 1);
    return;
  }
  if (value instanceof Map) return writeMap(out, [...value.entries()], depth);
  if (isPlainObject(value)) {
    return writeMap(out, Object.entries(value).filter(([, v]) => v !== undefined), depth);
  }
  throw new TypeError(`CBOR encode: cannot encode ${value.constructor?.name ?? 'this object'}`);
}

/**
 * The top-level output, reused: an ACK per TELEMETRY message made a fresh
 * 128-byte buffer each (allocation profile of the hub at full ingest). Map
 * keys still get their own Output (writeMap), so nothing nests in this one.
 */
const topLevel = new Output();

/** Encodes one value as one tag-free CBOR data item; throws on values outside the mapping above. */
export function encodeCbor(value: unknown): Uint8Array {
  topLevel.len = 0;
  try {
    writeItem(topLevel, value, 1);
    return topLevel.result();
  } finally {
    // A large message would keep its grown buffer for good; start small again.
    if (topLevel.buf.length > 4096) topLevel.buf = new Uint8Array(128);
  }
}
