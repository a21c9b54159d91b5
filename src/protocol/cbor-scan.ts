/**
 * Well-formedness pre-scan of one CBOR message (RFC 8949 appendix C), run
 * before cbor-x decodes anything. Why a separate pass:
 * - cbor-x recurses without a depth limit: ~5000 nested arrays overflow the
 *   stack. This scan is iterative (an explicit stack) and stops at depth 17.
 * - cbor-x expands its own extension tags (records 0xdfff.., shared
 *   structures, packed values, Date, Set...) even with useRecords:false, so a
 *   frame could redefine decoder state. The protocol has no tags: any tag at
 *   all is refused here, so cbor-x only ever sees plain data.
 * - It bounds work: item count capped, lengths checked against the bytes left.
 *
 * Depth counts arrays and maps only; the top-level item (the message array)
 * is depth 1. Strings, including indefinite-length ones, add no depth.
 * Every data item counts toward the item cap: array/map elements, map keys
 * and values, and each chunk of an indefinite-length string.
 */
import { isUtf8 } from 'node:buffer';
import { PulsewireError, type ErrorCode } from '../errors/catalog.js';
import { DEFAULT_MAX_CBOR_ITEMS, MAX_CBOR_DEPTH } from './limits.js';

export type ScanLimits = { maxDepth?: number; maxItems?: number };

/** Byte range of one indefinite-length string: its 0x5f/0x7f head to its break, exclusive end. */
export type StringSpan = { start: number; end: number };

export type ScanResult =
  | { error: PulsewireError }
  /** `elements`: with `{ elements: true }`, the byte range of each element when the item is an array. */
  | { error: null; indefiniteStrings: StringSpan[]; elements?: StringSpan[] };

const INDEFINITE = -1;

type Frame = {
  kind: 'array' | 'map' | 'chunks';
  /** Items still expected, or INDEFINITE until a break. */
  remaining: number;
  /** Items seen in an indefinite container (a map needs an even number). */
  count: number;
  /** For 'chunks': the string's major type (2 or 3). */
  major: number;
  start: number;
};

/**
 * Whether bytes[start, end) are valid UTF-8. Names and units are ASCII, which
 * is checked in place; only other text gets node's validator, on a view.
 * (Decoding every text string into a throwaway string was 5% of the hub's
 * allocations at full ingest.)
 */
function isUtf8Range(bytes: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    if (bytes[i]! >= 0x80) return isUtf8(bytes.subarray(start, end));
  }
  return true;
}

/**
 * The frames of the scan's explicit stack, reused from one call to the next:
 * the scan is synchronous, so one call has them at a time, and a message's
 * few containers no longer cost an object each. Never more than maxDepth + 1
 * (a string's chunks add one frame, never a level).
 */
const frames: Frame[] = [];

/** Sets frames[at] (the next free one), reusing the object there. */
function setFrame(at: number, kind: Frame['kind'], remaining: number, major: number, start: number): void {
  const frame = frames[at];
  if (frame === undefined) {
    frames.push({ kind, remaining, count: 0, major, start });
    return;
  }
  frame.kind = kind;
  frame.remaining = remaining;
  frame.count = 0;
  frame.major = major;
  frame.start = start;
}

function fail(code: ErrorCode, why: string, at: number): ScanResult {
  return { error: new PulsewireError(code, `${why} at byte ${at}`) };
}

/** The usual result (no indefinite-length strings, no element spans), shared: callers only read it. */
const PLAIN: ScanResult = Object.freeze({ error: null, indefiniteStrings: Object.freeze([]) as unknown as StringSpan[] });

/** Reads an n-byte big-endian unsigned integer; beyond 2^53 it is approximate, which only matters for lengths that are then too big anyway. */
function readUint(bytes: Uint8Array, pos: number, n: number): number {
  let value = 0;
  for (let i = 0; i < n; i++) value = value * 256 + bytes[pos + i]!;
  return value;
}

/** null when `bytes` is exactly one well-formed, tag-free, bounded CBOR item. */
export function scanCbor(bytes: Uint8Array, limits?: ScanLimits): PulsewireError | null {
  return inspectCbor(bytes, limits).error;
}

/**
 * Where each element of a top-level CBOR array sits in its bytes; undefined when
 * `bytes` is not one well-formed array. The HTTP fallback (protocol section 8)
 * carries several messages in one array, and a TELEMETRY resend is recognised
 * by seq plus a fingerprint of the message's own bytes: the exact slice, not a
 * re-encoding, gives an HTTP message the fingerprint of the same bytes sent as
 * a WebSocket frame.
 */
export function arrayElementSpans(bytes: Uint8Array, limits?: ScanLimits): StringSpan[] | undefined {
  const scan = inspectCbor(bytes, limits, { elements: true });
  return scan.error ? undefined : scan.elements;
}

/** Like scanCbor, and also reports where indefinite-length strings are (cbor-x cannot decode them). */
export function inspectCbor(bytes: Uint8Array, limits?: ScanLimits, report?: { elements?: boolean }): ScanResult {
  const maxDepth = limits?.maxDepth ?? MAX_CBOR_DEPTH;
  const maxItems = limits?.maxItems ?? DEFAULT_MAX_CBOR_ITEMS;
  const len = bytes.length;
  /** Frames in use: frames[0, sp). */
  let sp = 0;
  let spans: StringSpan[] | undefined;
  let pos = 0;
  let items = 0;
  let depth = 0;
  let started = false;
  // Starts of the top-level array's elements, and where that array's content ends.
  const elementStarts: number[] | undefined = report?.elements && (bytes[0] ?? 0) >> 5 === 4 ? [] : undefined;
  let elementsEnd = len;

  for (;;) {
    // Close definite containers that have all their items; that may finish the parent too.
    let top = sp > 0 ? frames[sp - 1] : undefined;
    while (top !== undefined && top.remaining === 0) {
      sp--;
      if (top.kind !== 'chunks') depth--;
      top = sp > 0 ? frames[sp - 1] : undefined;
    }
    if (started && top === undefined) break;

    const at = pos;
    if (pos >= len) return fail('PW_ERR_CBOR_MALFORMED', 'truncated: data item expected', at);
    const initial = bytes[pos++]!;

    if (initial === 0xff) {
      if (top === undefined || top.remaining !== INDEFINITE) {
        return fail('PW_ERR_CBOR_MALFORMED', 'break outside an indefinite-length item', at);
      }
      if (top.kind === 'map' && top.count % 2 !== 0) {
        return fail('PW_ERR_CBOR_MALFORMED', 'indefinite-length map ends after a key', at);
      }
      sp--;
      if (top.kind === 'chunks') (spans ??= []).push({ start: top.start, end: pos });
      else depth--;
      if (sp === 0) elementsEnd = at;
      continue;
    }

    if (elementStarts !== undefined && sp === 1) elementStarts.push(at);
    started = true;
    const major = initial >> 5;
    const info = initial & 0x1f;
    if (top?.kind === 'chunks' && (major !== top.major || info === 31)) {
      return fail('PW_ERR_CBOR_MALFORMED', 'indefinite-length string holds a chunk that is not a definite string of its type', at);
    }
    if (++items > maxItems) return fail('PW_ERR_CBOR_TOO_MANY_ITEMS', `more than ${maxItems} data items`, at);
    if (top !== undefined) {
      if (top.remaining === INDEFINITE) top.count++;
      else top.remaining--;
    }
    if (info >= 28 && info <= 30) {
      return fail('PW_ERR_CBOR_MALFORMED', `reserved additional information ${info}`, at);
    }

    let arg = info;
    if (info >= 24 && info <= 27) {
      const n = 1 << (info - 24);
      if (len - pos < n) return fail('PW_ERR_CBOR_MALFORMED', 'truncated: argument cut short', at);
      arg = readUint(bytes, pos, n);
      pos += n;
    }
    const indefinite = info === 31;

    switch (major) {
      case 0:
      case 1:
        if (indefinite) return fail('PW_ERR_CBOR_MALFORMED', 'integer with indefinite length', at);
        break;
      case 2:
      case 3:
        if (indefinite) {
          setFrame(sp++, 'chunks', INDEFINITE, major, at);
          break;
        }
        if (arg > len - pos) return fail('PW_ERR_CBOR_MALFORMED', 'truncated: string longer than the message', at);
        // Invalid UTF-8 is "invalid", not "not well-formed", in RFC 8949; refused all the same.
        if (major === 3 && !isUtf8Range(bytes, pos, pos + arg)) {
          return fail('PW_ERR_CBOR_MALFORMED', 'text string is not valid UTF-8', at);
        }
        pos += arg;
        break;
      case 4:
      case 5: {
        if (depth + 1 > maxDepth) return fail('PW_ERR_CBOR_TOO_DEEP', `nesting deeper than ${maxDepth}`, at);
        const kind = major === 4 ? 'array' : 'map';
        if (indefinite) {
          setFrame(sp++, kind, INDEFINITE, major, at);
        } else {
          const expected = major === 5 ? arg * 2 : arg;
          // Every item takes at least one byte: refuse impossible lengths before looping.
          if (expected > len - pos) return fail('PW_ERR_CBOR_MALFORMED', `truncated: ${kind} longer than the message`, at);
          setFrame(sp++, kind, expected, major, at);
        }
        depth++;
        break;
      }
      case 6:
        return fail('PW_ERR_CBOR_TAG', `tag ${arg}`, at);
      default: // major 7
        if (info < 20) return fail('PW_ERR_CBOR_MALFORMED', `unassigned simple value ${info}`, at);
        if (info === 24) {
          const why = arg < 32 ? `simple value ${arg} in two-byte form` : `unassigned simple value ${arg}`;
          return fail('PW_ERR_CBOR_MALFORMED', why, at);
        }
        // 20..23: false, true, null, undefined; 25..27: half, single, double floats (already skipped).
        break;
    }
  }

  if (pos !== len) return fail('PW_ERR_CBOR_MALFORMED', `${len - pos} trailing bytes after the data item`, pos);
  if (elementStarts === undefined) return spans === undefined ? PLAIN : { error: null, indefiniteStrings: spans };
  const elements = elementStarts.map((start, i) => ({ start, end: elementStarts[i + 1] ?? elementsEnd }));
  return { error: null, indefiniteStrings: spans ?? [], elements };
}
