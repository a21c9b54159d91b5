/**
 * The per-device memory of recently accepted TELEMETRY messages, so a resend
 * (after a lost ACK or a reconnect) is acknowledged with code 1 and not
 * stored twice. A device has at most 32 messages in flight, so remembering
 * the last 128 covers every resend a well-behaved device makes.
 *
 * Each entry is a seq plus a fingerprint of the frame's bytes. A resend
 * carries the same bytes; a device that rebooted and started again at seq 0
 * sends different bytes under an old seq, and those are new readings that
 * must be stored, not acknowledged as duplicates and lost.
 */
export const REMEMBERED_SEQS = 128;

/** First capacity; it doubles up to REMEMBERED_SEQS as the device sends. */
const INITIAL_CAPACITY = 8;
const EMPTY_U32 = new Uint32Array(0);
const EMPTY_I32 = new Int32Array(0);

export class AcceptedSeqs {
  // Grown on demand: two full windows are 1 KiB off-heap per device, paid also by the many
  // devices that send rarely or not at all (heap snapshot of 5,000 idle devices).
  #seqs = EMPTY_U32;
  #fingerprints = EMPTY_I32;
  #next = 0;
  #size = 0;

  has(seq: number, fingerprint: number): boolean {
    // A linear scan of 128 integers is cheaper than a Set's per-entry cost here.
    for (let i = 0; i < this.#size; i++) {
      if (this.#seqs[i] === seq && this.#fingerprints[i] === fingerprint) return true;
    }
    return false;
  }

  add(seq: number, fingerprint: number): void {
    if (this.#size === this.#seqs.length && this.#size < REMEMBERED_SEQS) this.#grow();
    this.#seqs[this.#next] = seq;
    this.#fingerprints[this.#next] = fingerprint;
    this.#next = (this.#next + 1) % REMEMBERED_SEQS;
    if (this.#size < REMEMBERED_SEQS) this.#size++;
  }

  /** Until the window is full nothing wraps, so slots 0..size-1 copy over as they are. */
  #grow(): void {
    const capacity = Math.min(REMEMBERED_SEQS, Math.max(INITIAL_CAPACITY, this.#seqs.length * 2));
    const seqs = new Uint32Array(capacity);
    const fingerprints = new Int32Array(capacity);
    seqs.set(this.#seqs);
    fingerprints.set(this.#fingerprints);
    this.#seqs = seqs;
    this.#fingerprints = fingerprints;
  }

  /** Oldest first: what a durable store needs to rebuild the window. */
  entries(): [seq: number, fingerprint: number][] {
    const out: [number, number][] = [];
    const start = this.#size < REMEMBERED_SEQS ? 0 : this.#next;
    for (let i = 0; i < this.#size; i++) {
      const at = (start + i) % REMEMBERED_SEQS;
      out.push([this.#seqs[at]!, this.#fingerprints[at]!]);
    }
    return out;
  }
}

/** FNV-1a over the frame: cheap, and only has to tell a resend from a different message under the same seq. */
export function frameFingerprint(bytes: Uint8Array): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) hash = Math.imul(hash ^ bytes[i]!, 0x01000193);
  return hash | 0;
}
