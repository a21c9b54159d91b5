/**
 * TELEMETRY frames for the load driver, made cheap: the hub's own encoder
 * builds one template per (batch size, names) with every variable part at a
 * fixed width (seq as a 4-byte uint, bt and each v as float64), and each
 * message is a copy of it with seq, time and values patched in place. The
 * bytes are exactly what encodeTelemetry gives for the same values with those
 * widths, so the hub decodes and validates them as it would any device's.
 * Encoding through Maps for every message made the driver, not the server,
 * the limit under ceiling A.
 */
import { decodeDeviceFrame, encodeTelemetry, float64, senmlRecord } from '../../src/protocol/index.js';

/** Seqs from here up (below 2^32) always take the 4-byte uint form. */
export const FIRST_SEQ = 0x0100_0000;

const BT_MARK = 1_234_567.890_123;
const valueMark = (i: number) => 987_654.321 + i * 1.5;

export class FrameTemplate {
  readonly #bytes: Uint8Array;
  readonly #btOffset: number;
  readonly #valueOffsets: number[];

  constructor(readonly names: readonly string[]) {
    const records = names.map((n, i) => senmlRecord(i === 0 ? { bt: float64(BT_MARK), n, v: float64(valueMark(i)) } : { n, v: float64(valueMark(i)) }));
    this.#bytes = encodeTelemetry(FIRST_SEQ, records);
    if (this.#bytes[2] !== 0x1a) throw new Error('template: seq is not a 4-byte uint');
    this.#btOffset = this.#find(BT_MARK);
    this.#valueOffsets = names.map((_, i) => this.#find(valueMark(i)));
  }

  /** A new frame; `seq` must be >= FIRST_SEQ, `timeS` the pack's base time in seconds. */
  frame(seq: number, timeS: number, values: (i: number) => number): Uint8Array {
    const out = this.#bytes.slice();
    const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
    view.setUint32(3, seq);
    view.setFloat64(this.#btOffset, timeS);
    for (let i = 0; i < this.#valueOffsets.length; i++) view.setFloat64(this.#valueOffsets[i]!, values(i));
    return out;
  }

  /** Offset of the 8 bytes after the float64 marker (0xfb) holding `value`. */
  #find(value: number): number {
    const needle = new Uint8Array(9);
    needle[0] = 0xfb;
    new DataView(needle.buffer).setFloat64(1, value);
    outer: for (let i = 0; i + 9 <= this.#bytes.length; i++) {
      for (let j = 0; j < 9; j++) if (this.#bytes[i + j] !== needle[j]) continue outer;
      return i + 1;
    }
    throw new Error(`template: float64 ${value} not found`);
  }
}

/** Decodes one patched frame with the hub's decoder; throws if it is not the TELEMETRY it should be. */
export function checkTemplate(t: FrameTemplate): void {
  const msg = decodeDeviceFrame(t.frame(FIRST_SEQ + 7, 1_700_000_000.123, (i) => i + 0.5));
  if (msg instanceof Error || msg.type !== 1 || msg.seq !== FIRST_SEQ + 7) throw new Error(`template self-check failed: ${String(msg instanceof Error ? msg.message : JSON.stringify(msg))}`);
}
