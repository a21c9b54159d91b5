/**
 * fast-check generators of CBOR as an attacker would write it, for the
 * properties in protocol-properties.ts. Random bytes alone rarely get past
 * the first head, so the main generator builds a tree of CBOR items, each in
 * any of its encodings (every argument width, definite or indefinite
 * lengths, tags, simple values, half/single/double floats, strings of
 * invalid UTF-8, chunked strings with a wrong chunk), and writes it out;
 * `mutatedCbor` then flips, cuts, inserts or overwrites bytes of that.
 */
import fc from 'fast-check';

/** One CBOR data item as written on the wire, not as decoded. */
export type CborItem =
  | { kind: 'uint' | 'nint'; value: bigint; width: Width }
  | { kind: 'bytes' | 'text'; data: Uint8Array; width: Width }
  | { kind: 'chunked'; major: 2 | 3; chunks: Array<{ major: number; data: Uint8Array }> }
  | { kind: 'array'; items: CborItem[]; indefinite: boolean }
  | { kind: 'map'; entries: Array<[CborItem, CborItem]>; indefinite: boolean; dropLastValue: boolean }
  | { kind: 'tag'; tag: bigint; item: CborItem }
  | { kind: 'simple'; byte: readonly number[] }
  | { kind: 'float'; size: 2 | 4 | 8; value: number }
  | { kind: 'break' };

/** How a head's argument is written: in the initial byte (when it fits) or in 1, 2, 4 or 8 more bytes. */
type Width = 'shortest' | 1 | 2 | 4 | 8;

const width = fc.constantFrom<Width>('shortest', 'shortest', 'shortest', 1, 2, 4, 8);

/** A head: major type and argument; an argument that does not fit the width is cut to it (which is itself a case). */
function head(major: number, arg: bigint, w: Width): number[] {
  const m = major << 5;
  if (w === 'shortest') {
    if (arg < 24n) return [m | Number(arg)];
    if (arg < 0x100n) return [m | 24, Number(arg)];
    if (arg < 0x10000n) return [m | 25, ...be(arg, 2)];
    if (arg < 0x100000000n) return [m | 26, ...be(arg, 4)];
    return [m | 27, ...be(arg, 8)];
  }
  const info = { 1: 24, 2: 25, 4: 26, 8: 27 }[w];
  return [m | info, ...be(arg, w)];
}

function be(value: bigint, n: number): number[] {
  const out: number[] = [];
  for (let i = n - 1; i >= 0; i--) out.push(Number((value >> BigInt(8 * i)) & 0xffn));
  return out;
}

export function writeCbor(item: CborItem): Uint8Array {
  const out: number[] = [];
  const write = (it: CborItem): void => {
    switch (it.kind) {
      case 'uint': out.push(...head(0, it.value, it.width)); return;
      case 'nint': out.push(...head(1, it.value, it.width)); return;
      case 'bytes': case 'text':
        out.push(...head(it.kind === 'bytes' ? 2 : 3, BigInt(it.data.length), it.width), ...it.data);
        return;
      case 'chunked':
        out.push((it.major << 5) | 31);
        for (const c of it.chunks) out.push(...head(c.major, BigInt(c.data.length), 'shortest'), ...c.data);
        out.push(0xff);
        return;
      case 'array':
        out.push(...(it.indefinite ? [0x9f] : head(4, BigInt(it.items.length), 'shortest')));
        it.items.forEach(write);
        if (it.indefinite) out.push(0xff);
        return;
      case 'map': {
        out.push(...(it.indefinite ? [0xbf] : head(5, BigInt(it.entries.length), 'shortest')));
        it.entries.forEach(([k, v], i) => {
          write(k);
          if (!(it.dropLastValue && i === it.entries.length - 1)) write(v);
        });
        if (it.indefinite) out.push(0xff);
        return;
      }
      case 'tag': out.push(...head(6, it.tag, 'shortest')); write(it.item); return;
      case 'simple': out.push(...it.byte); return;
      case 'float': {
        const view = new DataView(new ArrayBuffer(it.size));
        // Half floats: the value's integer bits stand for any 16-bit pattern (infinity for a non-finite value).
        if (it.size === 2) view.setUint16(0, Number.isFinite(it.value) ? Math.abs(Math.trunc(it.value)) & 0xffff : 0x7c00);
        else if (it.size === 4) view.setFloat32(0, it.value);
        else view.setFloat64(0, it.value);
        out.push({ 2: 0xf9, 4: 0xfa, 8: 0xfb }[it.size], ...new Uint8Array(view.buffer));
        return;
      }
      case 'break': out.push(0xff); return;
    }
  };
  write(item);
  return Uint8Array.from(out);
}

const utf8 = new TextEncoder();
/** Bytes that are not UTF-8: a lone continuation, an overlong form, a surrogate, a cut sequence. */
const badUtf8 = fc.constantFrom(Uint8Array.of(0x80), Uint8Array.of(0xc0, 0xaf), Uint8Array.of(0xed, 0xa0, 0x80), Uint8Array.of(0xe2, 0x82), Uint8Array.of(0xff));
const text = fc.oneof(
  { weight: 6, arbitrary: fc.string({ maxLength: 12 }).map((s) => utf8.encode(s)) },
  { weight: 2, arbitrary: fc.constantFrom('n', 'v', 'bn', 'temp', 'a_', 'x', '').map((s) => utf8.encode(s)) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 6 }).map((s) => utf8.encode(s)) },
  { weight: 1, arbitrary: badUtf8 },
);
const bigArg = fc.oneof(
  { weight: 6, arbitrary: fc.bigInt({ min: 0n, max: 30n }) },
  { weight: 2, arbitrary: fc.bigInt({ min: 0n, max: 0xffffffffn }) },
  { weight: 1, arbitrary: fc.bigInt({ min: 0n, max: 0xffffffffffffffffn }) },
);

const leaf: fc.Arbitrary<CborItem> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constantFrom<'uint' | 'nint'>('uint', 'nint'), value: bigArg, width }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant<'text'>('text'), data: text, width }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant<'bytes'>('bytes'), data: fc.uint8Array({ maxLength: 8 }), width }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant<'chunked'>('chunked'),
      major: fc.constantFrom<2 | 3>(2, 3),
      // Mostly chunks of the right type; sometimes one of the other type, which must be refused.
      chunks: fc.array(fc.record({ major: fc.constantFrom(2, 3, 3, 3), data: fc.oneof(text, fc.uint8Array({ maxLength: 4 })) }), { maxLength: 3 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.oneof(
      fc.constantFrom([0xf4], [0xf5], [0xf6], [0xf7]),
      fc.integer({ min: 0, max: 19 }).map((v) => [0xe0 | v]),
      fc.integer({ min: 0, max: 255 }).map((v) => [0xf8, v]),
      fc.constantFrom([0xfc], [0xfd], [0xfe], [0x1c], [0x5d], [0x3e], [0x1f]),
    ).map((byte) => ({ kind: 'simple' as const, byte })),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant<'float'>('float'),
      size: fc.constantFrom<2 | 4 | 8>(2, 4, 8, 8),
      value: fc.oneof(fc.double(), fc.constantFrom(Number.NaN, Infinity, -Infinity, -0, 1e308, 5e-324)),
    }),
  },
  { weight: 1, arbitrary: fc.constant<CborItem>({ kind: 'break' }) },
);

/** A CBOR item of at most `maxDepth` levels of arrays and maps (past 16 is a case in itself). */
export function cborItem(maxDepth = 20): fc.Arbitrary<CborItem> {
  const { item } = fc.letrec<{ item: CborItem }>((tie) => ({
    item: fc.oneof(
      { depthSize: 'small', maxDepth, withCrossShrink: true },
      leaf,
      fc.record({ kind: fc.constant<'array'>('array'), items: fc.array(tie('item'), { maxLength: 5 }), indefinite: fc.boolean() }),
      fc.record({
        kind: fc.constant<'map'>('map'),
        entries: fc.array(fc.tuple(tie('item'), tie('item')), { maxLength: 4 }),
        indefinite: fc.boolean(),
        // Now and then a map that ends after a key.
        dropLastValue: fc.oneof({ weight: 9, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
      }),
      fc.record({ kind: fc.constant<'tag'>('tag'), tag: fc.oneof(fc.bigInt({ min: 0n, max: 30n }), fc.constantFrom(55799n, 0xd9d9f7n, 258n, 0xdfffn, 40009n)), item: tie('item') }),
    ),
  }));
  return item;
}

/** A chain of `depth` nested arrays around a leaf: depth past the stack a recursive decoder has. */
export const deepNesting = fc.record({
  depth: fc.oneof(fc.integer({ min: 14, max: 20 }), fc.integer({ min: 1000, max: 20_000 })),
  open: fc.constantFrom(0x81, 0x9f, 0xa1),
}).map(({ depth, open }) => {
  const out = new Uint8Array(depth + 1 + (open === 0x9f ? depth : 0) + (open === 0xa1 ? depth : 0));
  let p = 0;
  for (let i = 0; i < depth; i++) {
    out[p++] = open;
    if (open === 0xa1) out[p++] = 0x00; // key 0, value: the next level
  }
  out[p++] = 0x00;
  if (open === 0x9f) for (let i = 0; i < depth; i++) out[p++] = 0xff;
  return out.subarray(0, p);
});

/** Damage done to an encoding, byte-wise. */
export type Mutation =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'set'; at: number; value: number }
  | { op: 'truncate'; at: number }
  | { op: 'insert'; at: number; bytes: Uint8Array }
  | { op: 'delete'; at: number; count: number }
  /** A head's major type swapped (an array read as a map, text as bytes, a number as a tag...). */
  | { op: 'retype'; at: number; major: number }
  /** A head's additional information changed: a length or width that no longer matches what follows. */
  | { op: 'relength'; at: number; info: number };

export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant<'flip'>('flip'), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ op: fc.constant<'set'>('set'), at: fc.nat(), value: fc.constantFrom(0x00, 0x18, 0x19, 0x1a, 0x1b, 0x1f, 0x5f, 0x7f, 0x9f, 0xbf, 0xc0, 0xd8, 0xf7, 0xf8, 0xfb, 0xff) }),
  fc.record({ op: fc.constant<'truncate'>('truncate'), at: fc.nat() }),
  fc.record({ op: fc.constant<'insert'>('insert'), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 9 }) }),
  fc.record({ op: fc.constant<'delete'>('delete'), at: fc.nat(), count: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ op: fc.constant<'retype'>('retype'), at: fc.nat(), major: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ op: fc.constant<'relength'>('relength'), at: fc.nat(), info: fc.integer({ min: 0, max: 31 }) }),
);

export function applyMutations(bytes: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  let out = Uint8Array.from(bytes);
  for (const m of mutations) {
    const at = out.length === 0 ? 0 : m.at % (out.length + (m.op === 'insert' ? 1 : 0));
    switch (m.op) {
      case 'flip': if (out.length > 0) out[at] = out[at]! ^ (1 << m.bit); break;
      case 'set': if (out.length > 0) out[at] = m.value; break;
      case 'truncate': out = out.slice(0, at); break;
      case 'insert': out = Uint8Array.from([...out.subarray(0, at), ...m.bytes, ...out.subarray(at)]); break;
      case 'delete': out = Uint8Array.from([...out.subarray(0, at), ...out.subarray(at + m.count)]); break;
      case 'retype': if (out.length > 0) out[at] = (m.major << 5) | (out[at]! & 0x1f); break;
      case 'relength': if (out.length > 0) out[at] = (out[at]! & 0xe0) | m.info; break;
    }
  }
  return out;
}

/** CBOR with a few byte-level mutations (none, sometimes): malformed in every way the tree cannot say. */
export function mutatedCbor(base: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  return fc.tuple(base, fc.array(mutation, { maxLength: 3 })).map(([bytes, ms]) => applyMutations(bytes, ms));
}
