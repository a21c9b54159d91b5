/**
 * A TELEMETRY pack read straight from the frame's CBOR bytes, record by
 * record into senml-fields.ts's Fields, instead of cbor-x making a Map (and
 * an array around them) per record that resolution reads once and drops:
 * those were a third of what the hub allocated per reading after the spool
 * kept line protocol (allocation profile of bench/probes/ingest-cpu.ts).
 *
 * Only the frame's usual encoding is read here: definite maps, integer or
 * text labels, values that are integers up to 32 bits, floats, text, bytes,
 * true, false, null, undefined. Anything else (an indefinite map, a nested
 * array or map as a value, a float label, a 64-bit integer) makes the reader
 * give up (Unusual) and resolvePack decodes the pack with cbor-x as before,
 * so every pack resolves as it did. The bytes were checked by the
 * well-formedness scan first (cbor-scan.ts: no tags, valid UTF-8, lengths
 * within the frame, limits).
 */
import { PulsewireError } from '../errors/catalog.js';
import { decodeCbor } from './cbor-decode.js';
import { addField, Malformed, type Fields } from './senml-fields.js';

/** The reader meets an encoding it leaves to cbor-x. Thrown without a stack: it is control flow. */
export class Unusual extends Error {}
const UNUSUAL = new Unusual('left to cbor-x');

/** A pack as the bytes of its definite CBOR array, from `start` (its head) to the end of the frame. */
export class CborPack {
  readonly bytes: Buffer;
  readonly start: number;
  /** Its records, from the array head. */
  readonly length: number;
  /** Where its first record starts. */
  readonly first: number;

  constructor(bytes: Uint8Array, start: number) {
    this.bytes = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.start = start;
    this.first = readHead(this.bytes, start);
    this.length = arg;
  }

  /**
   * The pack as cbor-x decodes it (Maps in an array): resolvePack's way when
   * this reader gives up; or the error cbor-x's decoding of the frame gives.
   */
  decode(): unknown {
    const decoded = decodeCbor(this.bytes.subarray(this.start));
    return decoded instanceof PulsewireError ? decoded : decoded.value;
  }
}

/** The argument of the head readHead just read (module state: no object per head). */
let arg = 0;

/** Reads a head with an argument of up to 32 bits at `pos`; returns where its content starts. */
function readHead(b: Buffer, pos: number): number {
  const info = b[pos]! & 0x1f;
  switch (info) {
    case 24: arg = b[pos + 1]!; return pos + 2;
    case 25: arg = b.readUInt16BE(pos + 1); return pos + 3;
    case 26: arg = b.readUInt32BE(pos + 1); return pos + 5;
    default:
      if (info < 24) { arg = info; return pos + 1; }
      throw UNUSUAL; // 64-bit argument or indefinite length
  }
}

/** IEEE 754 half precision, as cbor-x reads it. */
function half(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 31) return fraction === 0 ? sign * Infinity : NaN;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

/** Scratch arrays of each short length, for String.fromCharCode.apply (no array per string). */
const SHORT = 24;
const units: number[][] = Array.from({ length: SHORT + 1 }, (_, n) => new Array<number>(n).fill(0));

/**
 * UTF-8 text of `length` bytes at `start`. Names, units and labels are
 * short ASCII: read here, not through Buffer#toString, whose call into
 * native code cost more than the rest of the record (microbenchmark).
 */
function text(b: Buffer, start: number, length: number): string {
  if (length <= SHORT) {
    const codes = units[length]!;
    let ascii = true;
    for (let i = 0; i < length; i++) {
      const c = b[start + i]!;
      if (c >= 0x80) { ascii = false; break; }
      codes[i] = c;
    }
    if (ascii) return String.fromCharCode.apply(null, codes);
  }
  return b.toString('utf8', start, start + length);
}

/** The value readValue just read. */
let value: unknown;

/** Reads one value at `pos` into `value`; returns where the next item starts. */
function readValue(b: Buffer, pos: number): number {
  const initial = b[pos]!;
  switch (initial >> 5) {
    case 0: { const next = readHead(b, pos); value = arg; return next; }
    case 1: { const next = readHead(b, pos); value = -1 - arg; return next; }
    case 2: {
      const next = readHead(b, pos);
      // A copy, as cbor-x's copyBuffers gives: a reading must not pin the frame.
      value = new Uint8Array(b.subarray(next, next + arg));
      return next + arg;
    }
    case 3: { const next = readHead(b, pos); value = text(b, next, arg); return next + arg; }
    case 7:
      switch (initial) {
        case 0xf4: value = false; return pos + 1;
        case 0xf5: value = true; return pos + 1;
        case 0xf6: value = null; return pos + 1;
        case 0xf7: value = undefined; return pos + 1;
        case 0xf9: value = half(b.readUInt16BE(pos + 1)); return pos + 3;
        case 0xfa: value = b.readFloatBE(pos + 1); return pos + 5;
        case 0xfb: value = b.readDoubleBE(pos + 1); return pos + 9;
        default: throw UNUSUAL;
      }
    default: throw UNUSUAL; // arrays, maps (nested values), tags
  }
}

/** Reads a pack's records in turn. */
export class CborRecords {
  readonly #bytes: Buffer;
  #pos: number;

  constructor(pack: CborPack) {
    this.#bytes = pack.bytes;
    this.#pos = pack.first;
  }

  /** The next record's fields into `fields` (cleared first). */
  next(fields: Fields): void {
    fields.clear();
    const b = this.#bytes;
    let pos = this.#pos;
    const initial = b[pos]!;
    if (initial >> 5 !== 5) {
      // Not a map: an error whatever it holds, unless it is something only cbor-x reads the way resolvePack expects.
      if (initial >> 5 === 6) throw UNUSUAL;
      throw new Malformed('record must be a map');
    }
    pos = readHead(b, pos);
    const pairs = arg;
    for (let i = 0; i < pairs; i++) {
      const keyMajor = b[pos]! >> 5;
      let key: string | number;
      if (keyMajor === 0) { pos = readHead(b, pos); key = arg; }
      else if (keyMajor === 1) { pos = readHead(b, pos); key = -1 - arg; }
      else if (keyMajor === 3) { const next = readHead(b, pos); key = text(b, next, arg); pos = next + arg; }
      else throw UNUSUAL;
      pos = readValue(b, pos);
      addField(fields, key, value);
    }
    this.#pos = pos;
  }
}
