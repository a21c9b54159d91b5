/**
 * A tiny CBOR (RFC 8949) encoder and decoder written from the RFC alone, for
 * the protocol-v1 conformance tests. Deliberately independent of the hub's
 * code and of cbor-x.
 *
 * Encoding: definite lengths, shortest-form integer heads. Numbers that are
 * safe integers become major type 0/1, everything else a double. Helpers
 * produce half/single floats, tags, and indefinite-length items on request,
 * and `Raw` splices pre-encoded bytes into an encoding.
 *
 * Decoding: the whole of RFC 8949's basic data model: definite and
 * indefinite lengths, half/single/double floats, tags (kept as `Tagged`),
 * simple values. Maps decode to `Map` so integer keys (SenML labels) survive.
 */

export class Raw {
  constructor(readonly bytes: Uint8Array) {}
}
export class Tagged {
  constructor(readonly tag: number, readonly value: unknown) {}
}
export class Simple {
  constructor(readonly value: number) {}
}

export type CborValue = unknown;

// ---------------------------------------------------------------- encoding

function head(major: number, arg: number | bigint): number[] {
  const mt = major << 5;
  const n = typeof arg === 'bigint' ? arg : BigInt(arg);
  if (n < 0n) throw new Error('negative head argument');
  if (n < 24n) return [mt | Number(n)];
  if (n < 0x100n) return [mt | 24, Number(n)];
  if (n < 0x10000n) return [mt | 25, Number(n >> 8n), Number(n & 0xffn)];
  if (n < 0x100000000n) {
    const v = Number(n);
    return [mt | 26, (v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
  }
  if (n < 0x10000000000000000n) {
    const out = [mt | 27];
    for (let i = 7; i >= 0; i--) out.push(Number((n >> BigInt(i * 8)) & 0xffn));
    return out;
  }
  throw new Error('head argument too large');
}

function encodeInto(value: CborValue, out: number[]): void {
  if (value instanceof Raw) {
    for (const b of value.bytes) out.push(b);
  } else if (value === null) {
    out.push(0xf6);
  } else if (value === undefined) {
    out.push(0xf7);
  } else if (value === false) {
    out.push(0xf4);
  } else if (value === true) {
    out.push(0xf5);
  } else if (typeof value === 'bigint') {
    if (value >= 0n) out.push(...head(0, value));
    else out.push(...head(1, -1n - value));
  } else if (typeof value === 'number') {
    if (Number.isSafeInteger(value) && !Object.is(value, -0)) {
      if (value >= 0) out.push(...head(0, value));
      else out.push(...head(1, -1 - value));
    } else {
      out.push(...float64(value).bytes);
    }
  } else if (typeof value === 'string') {
    const bytes = Buffer.from(value, 'utf8');
    out.push(...head(3, bytes.length));
    for (const b of bytes) out.push(b);
  } else if (value instanceof Uint8Array) {
    out.push(...head(2, value.length));
    for (const b of value) out.push(b);
  } else if (Array.isArray(value)) {
    out.push(...head(4, value.length));
    for (const item of value) encodeInto(item, out);
  } else if (value instanceof Tagged) {
    out.push(...head(6, value.tag));
    encodeInto(value.value, out);
  } else if (value instanceof Simple) {
    if (value.value < 24) out.push(0xe0 | value.value);
    else out.push(0xf8, value.value);
  } else if (value instanceof Map) {
    out.push(...head(5, value.size));
    for (const [k, v] of value) {
      encodeInto(k, out);
      encodeInto(v, out);
    }
  } else if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>);
    out.push(...head(5, entries.length));
    for (const [k, v] of entries) {
      encodeInto(k, out);
      encodeInto(v, out);
    }
  } else {
    throw new Error(`cannot encode ${typeof value}`);
  }
}

export function encode(value: CborValue): Buffer {
  const out: number[] = [];
  encodeInto(value, out);
  return Buffer.from(out);
}

/**
 * The deterministic form docs/protocol.md says the hub sends ("What the hub
 * sends"): shortest integer heads, definite lengths, map keys sorted by their
 * encoded bytes (RFC 8949 section 4.2.1), every non-integral number a
 * float64. Maps and plain objects are sorted recursively; a `Raw` is taken
 * as is. What a COMMAND or DESIRED frame must be, byte for byte.
 */
export function encodeDeterministic(value: CborValue): Buffer {
  if (value instanceof Raw) return Buffer.from(value.bytes);
  if (Array.isArray(value)) return Buffer.concat([Buffer.from(head(4, value.length)), ...value.map(encodeDeterministic)]);
  const isPlainObject = typeof value === 'object' && value !== null && !(value instanceof Uint8Array) && !(value instanceof Tagged) && !(value instanceof Simple);
  if (value instanceof Map || isPlainObject) {
    const entries: [unknown, unknown][] = value instanceof Map ? [...value] : Object.entries(value as Record<string, unknown>);
    const encoded = entries.map(([k, v]) => [encodeDeterministic(k), encodeDeterministic(v)] as const);
    encoded.sort(([a], [b]) => Buffer.compare(a, b));
    return Buffer.concat([Buffer.from(head(5, encoded.length)), ...encoded.flat()]);
  }
  return encode(value);
}

/** A half-precision float; throws unless `n` is exactly representable. */
export function float16(n: number): Raw {
  const bits = toHalfBits(n);
  if (fromHalfBits(bits) !== n && !(Number.isNaN(n) && Number.isNaN(fromHalfBits(bits)))) {
    throw new Error(`${n} is not exactly representable as a half float`);
  }
  return new Raw(Uint8Array.from([0xf9, bits >> 8, bits & 0xff]));
}

/** A single-precision float; throws unless `n` is exactly representable. */
export function float32(n: number): Raw {
  const buf = Buffer.alloc(5);
  buf[0] = 0xfa;
  buf.writeFloatBE(n, 1);
  const back = buf.readFloatBE(1);
  if (back !== n && !(Number.isNaN(n) && Number.isNaN(back))) throw new Error(`${n} is not exactly a single float`);
  return new Raw(buf);
}

/** A double-precision float, even for integral values. */
export function float64(n: number): Raw {
  const buf = Buffer.alloc(9);
  buf[0] = 0xfb;
  buf.writeDoubleBE(n, 1);
  return new Raw(buf);
}

function toHalfBits(n: number): number {
  if (Number.isNaN(n)) return 0x7e00;
  const sign = n < 0 || Object.is(n, -0) ? 0x8000 : 0;
  const a = Math.abs(n);
  if (a === Infinity) return sign | 0x7c00;
  if (a === 0) return sign;
  let exp = Math.floor(Math.log2(a));
  if (exp < -14) {
    // subnormal: a = mant * 2^-24
    return sign | Math.round(a / 2 ** -24);
  }
  if (exp > 15) return sign | 0x7c00;
  let mant = Math.round((a / 2 ** exp - 1) * 1024);
  if (mant === 1024) {
    mant = 0;
    exp += 1;
  }
  return sign | ((exp + 15) << 10) | mant;
}

function fromHalfBits(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Indefinite-length array (0x9f ... 0xff) of the given items. */
export function indefArray(items: CborValue[]): Raw {
  return new Raw(Buffer.concat([Buffer.from([0x9f]), ...items.map((i) => encode(i)), Buffer.from([0xff])]));
}

/** Indefinite-length map (0xbf ... 0xff) of the given entries. */
export function indefMap(entries: [CborValue, CborValue][]): Raw {
  return new Raw(
    Buffer.concat([Buffer.from([0xbf]), ...entries.flatMap(([k, v]) => [encode(k), encode(v)]), Buffer.from([0xff])]),
  );
}

/** Indefinite-length text string made of definite-length chunks. */
export function indefText(chunks: string[]): Raw {
  return new Raw(Buffer.concat([Buffer.from([0x7f]), ...chunks.map((c) => encode(c)), Buffer.from([0xff])]));
}

/** Indefinite-length byte string made of definite-length chunks. */
export function indefBytes(chunks: Uint8Array[]): Raw {
  return new Raw(Buffer.concat([Buffer.from([0x5f]), ...chunks.map((c) => encode(c)), Buffer.from([0xff])]));
}

// ---------------------------------------------------------------- decoding

export class CborError extends Error {}

const BREAK = Symbol('break');

class Reader {
  pos = 0;
  constructor(readonly buf: Buffer) {}

  need(n: number): void {
    if (this.pos + n > this.buf.length) throw new CborError('unexpected end of input');
  }
  byte(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }
  bytes(n: number): Buffer {
    this.need(n);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  /** The argument of a head; null for indefinite length (ai 31). */
  argument(ai: number): number | bigint | null {
    if (ai < 24) return ai;
    if (ai === 24) return this.byte();
    if (ai === 25) return this.bytes(2).readUInt16BE(0);
    if (ai === 26) return this.bytes(4).readUInt32BE(0);
    if (ai === 27) {
      const v = this.bytes(8).readBigUInt64BE(0);
      return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
    }
    if (ai === 31) return null;
    throw new CborError(`reserved additional information ${ai}`);
  }

  item(allowBreak = false): unknown {
    const ib = this.byte();
    const major = ib >> 5;
    const ai = ib & 0x1f;
    if (ib === 0xff) {
      if (allowBreak) return BREAK;
      throw new CborError('unexpected break');
    }
    if (major === 7) {
      if (ai === 20) return false;
      if (ai === 21) return true;
      if (ai === 22) return null;
      if (ai === 23) return undefined;
      if (ai === 25) return fromHalfBits(this.bytes(2).readUInt16BE(0));
      if (ai === 26) return this.bytes(4).readFloatBE(0);
      if (ai === 27) return this.bytes(8).readDoubleBE(0);
      if (ai < 24) return new Simple(ai);
      if (ai === 24) return new Simple(this.byte());
      throw new CborError(`reserved simple/float encoding ${ai}`);
    }
    const arg = this.argument(ai);
    switch (major) {
      case 0:
        if (arg === null) throw new CborError('indefinite integer');
        return arg;
      case 1:
        if (arg === null) throw new CborError('indefinite integer');
        return typeof arg === 'bigint' ? -1n - arg : -1 - arg;
      case 2:
      case 3: {
        let raw: Buffer;
        if (arg === null) {
          const chunks: Buffer[] = [];
          for (;;) {
            const cb = this.byte();
            if (cb === 0xff) break;
            if (cb >> 5 !== major) throw new CborError('bad chunk in indefinite string');
            const len = this.argument(cb & 0x1f);
            if (len === null || typeof len === 'bigint') throw new CborError('bad chunk length');
            chunks.push(this.bytes(len));
          }
          raw = Buffer.concat(chunks);
        } else {
          if (typeof arg === 'bigint') throw new CborError('string too long');
          raw = this.bytes(arg);
        }
        if (major === 2) return new Uint8Array(raw);
        return new TextDecoder('utf-8', { fatal: true }).decode(raw);
      }
      case 4: {
        const out: unknown[] = [];
        if (arg === null) {
          for (;;) {
            const v = this.item(true);
            if (v === BREAK) break;
            out.push(v);
          }
        } else {
          for (let i = 0; i < Number(arg); i++) out.push(this.item());
        }
        return out;
      }
      case 5: {
        const out = new Map<unknown, unknown>();
        if (arg === null) {
          for (;;) {
            const k = this.item(true);
            if (k === BREAK) break;
            out.set(k, this.item());
          }
        } else {
          for (let i = 0; i < Number(arg); i++) {
            const k = this.item();
            out.set(k, this.item());
          }
        }
        return out;
      }
      case 6:
        if (arg === null) throw new CborError('indefinite tag');
        return new Tagged(Number(arg), this.item());
    }
    throw new CborError('unreachable');
  }
}

/** Decodes exactly one CBOR data item; trailing bytes are an error. */
export function decode(bytes: Uint8Array): unknown {
  const r = new Reader(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  const value = r.item();
  if (r.pos !== r.buf.length) throw new CborError(`${r.buf.length - r.pos} trailing bytes`);
  return value;
}

/**
 * The encoded bytes of each element of a CBOR array (definite or indefinite
 * length), in order: an HTTP fallback answer is an array whose elements must
 * each be byte for byte a WebSocket frame. Throws unless `bytes` is exactly
 * one array.
 */
export function arrayElements(bytes: Uint8Array): Buffer[] {
  const r = new Reader(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  const ib = r.byte();
  if (ib >> 5 !== 4) throw new CborError(`not an array (initial byte 0x${ib.toString(16)})`);
  const count = r.argument(ib & 0x1f);
  if (typeof count === 'bigint') throw new CborError('array too long');
  const elements: Buffer[] = [];
  for (let i = 0; count === null || i < count; i++) {
    const start = r.pos;
    if (r.item(count === null) === BREAK) break;
    elements.push(Buffer.from(r.buf.subarray(start, r.pos)));
  }
  if (r.pos !== r.buf.length) throw new CborError(`${r.buf.length - r.pos} trailing bytes`);
  return elements;
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

export function fromHex(h: string): Buffer {
  return Buffer.from(h.replace(/\s+/g, ''), 'hex');
}
