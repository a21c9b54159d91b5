/**
 * Where each element of a top-level CBOR array sits in its bytes. The HTTP
 * fallback (protocol section 8) carries several messages in one array, and a
 * TELEMETRY resend is recognised by seq plus a fingerprint of the message's
 * own bytes: taking the exact slice, not a re-encoding, gives an HTTP message
 * the same fingerprint as the same bytes sent as a WebSocket frame, so a
 * device that falls back from WebSocket to HTTP and resends its window is
 * not stored twice.
 *
 * Only for input that scanCbor (cbor-scan.ts) already accepted: it skips
 * items without re-checking them.
 */

export type Span = { start: number; end: number };

/** The byte ranges of the elements of the array `bytes` holds; undefined when it is not an array. */
export function arrayElementSpans(bytes: Uint8Array): Span[] | undefined {
  const initial = bytes[0];
  if (initial === undefined || initial >> 5 !== 4) return undefined;
  const head = readHead(bytes, 0);
  const spans: Span[] = [];
  let pos = head.next;
  for (let i = 0; head.length === undefined ? bytes[pos] !== 0xff : i < head.length; i++) {
    const end = skipItem(bytes, pos);
    spans.push({ start: pos, end });
    pos = end;
  }
  return spans;
}

/** Major type, argument (a length or a value; undefined for indefinite length) and where the content starts. */
function readHead(bytes: Uint8Array, pos: number): { major: number; length: number | undefined; next: number } {
  const initial = bytes[pos]!;
  const major = initial >> 5;
  const info = initial & 0x1f;
  if (info < 24) return { major, length: info, next: pos + 1 };
  if (info === 31) return { major, length: undefined, next: pos + 1 };
  const n = 1 << (info - 24); // 24..27 -> 1, 2, 4, 8 bytes
  let value = 0;
  for (let i = 1; i <= n; i++) value = value * 256 + bytes[pos + i]!;
  return { major, length: value, next: pos + 1 + n };
}

/** The position just after the data item starting at `pos`. */
function skipItem(bytes: Uint8Array, pos: number): number {
  const { major, length, next } = readHead(bytes, pos);
  switch (major) {
    case 0: case 1: case 7: // integers, simple values and floats: the head is the whole item
      return next;
    case 2: case 3: {
      if (length !== undefined) return next + length;
      let at = next;
      while (bytes[at] !== 0xff) at = skipItem(bytes, at);
      return at + 1;
    }
    default: { // 4 array, 5 map (6, tags, never passes the scan)
      const perEntry = major === 5 ? 2 : 1;
      let at = next;
      if (length === undefined) {
        while (bytes[at] !== 0xff) at = skipItem(bytes, at);
        return at + 1;
      }
      for (let i = 0; i < length * perEntry; i++) at = skipItem(bytes, at);
      return at;
    }
  }
}
