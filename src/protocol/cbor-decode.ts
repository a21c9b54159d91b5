/**
 * Bytes to one plain CBOR value: pre-scan, then cbor-x. Never throws.
 *
 * The decoder is configured for plain data only: no shared structures,
 * useRecords:false, mapsAsObjects:false (maps come back as Map with their
 * exact integer/text keys, so SenML labels 0 and "n" stay distinct),
 * int64AsNumber (64-bit integers as numbers, not bigint, so values can be
 * turned into JSON; integers beyond 2^53 lose precision and no protocol field
 * needs them), copyBuffers (byte strings do not pin the frame's memory).
 * Tags never reach it: the scan refuses them, so its extensions stay unused.
 */
import { Decoder, type Options } from 'cbor-x';
import { PulsewireError } from '../errors/catalog.js';
import { inspectCbor, type ScanLimits, type StringSpan } from './cbor-scan.js';
import { encodeHead } from './cbor-encode.js';

const decoder = new Decoder({
  useRecords: false,
  mapsAsObjects: false,
  copyBuffers: true,
  int64AsNumber: true,
} as Options & { int64AsNumber: boolean });

/**
 * The same, but 64-bit integers come back as bigint: for command results and
 * device state, where an integer beyond 2^53 must reach the operator exactly
 * (docs/json-cbor.md). Telemetry keeps numbers: SenML values are doubles.
 */
const exactDecoder = new Decoder({ useRecords: false, mapsAsObjects: false, copyBuffers: true });

/**
 * cbor-x refuses indefinite-length byte and text strings, which the protocol
 * requires decoders to accept. The scan has validated them (definite chunks
 * of the same type, valid UTF-8), so rewrite each as one definite string.
 * Container lengths count items, not bytes, so nothing else changes.
 */
export function withDefiniteStrings(bytes: Uint8Array, spans: readonly StringSpan[]): Uint8Array {
  const parts: Uint8Array[] = [];
  let copied = 0;
  for (const { start, end } of spans) {
    parts.push(bytes.subarray(copied, start));
    const major = bytes[start]! >> 5;
    const chunks: Uint8Array[] = [];
    let total = 0;
    let pos = start + 1;
    while (pos < end - 1) {
      const info = bytes[pos++]! & 0x1f;
      let length = info;
      if (info >= 24) {
        const n = 1 << (info - 24);
        length = 0;
        for (let i = 0; i < n; i++) length = length * 256 + bytes[pos + i]!;
        pos += n;
      }
      chunks.push(bytes.subarray(pos, pos + length));
      total += length;
      pos += length;
    }
    parts.push(encodeHead(major, total), ...chunks);
    copied = end;
  }
  parts.push(bytes.subarray(copied));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** One CBOR item from `bytes`, or the PulsewireError saying why not. */
export function decodeCbor(bytes: Uint8Array, limits?: ScanLimits, opts: { exactIntegers?: boolean } = {}): { value: unknown } | PulsewireError {
  const scan = inspectCbor(bytes, limits);
  if (scan.error) return scan.error;
  const input = scan.indefiniteStrings.length > 0 ? withDefiniteStrings(bytes, scan.indefiniteStrings) : bytes;
  try {
    return { value: (opts.exactIntegers ? exactDecoder : decoder).decode(input) as unknown };
  } catch (cause) {
    // Should not happen after the scan; kept so a cbor-x surprise closes one connection, not the hub.
    return new PulsewireError('PW_ERR_CBOR_MALFORMED', 'undecodable CBOR', { cause });
  }
}
