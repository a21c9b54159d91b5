/**
 * The durable copy of each device's accepted-seq window (see
 * gateway/accepted-seqs.ts), so a resend after a hub restart or crash is
 * still answered ACK 1 and not stored twice.
 *
 * One small record per accepted message, not the whole window: key
 * `${deviceId}/${slot}` with slot = n mod windowSize, value [seq, fingerprint, n]
 * where n counts the device's accepted messages. Each append overwrites the
 * oldest slot, so the cost per message is one tiny put in the spool's commit,
 * and loading a window is one short range read sorted by n. Device ids cannot
 * contain '/', so `${id}/` .. `${id}0` covers exactly one device.
 */
import type { Database } from 'lmdb';

type Slot = [seq: number, fingerprint: number, n: number];

export class AcceptedWindowStore {
  readonly #db: Database<Slot, string>;
  readonly #size: number;
  /** Next n per device, known once its window was loaded (or first written). */
  readonly #next = new Map<string, number>();

  constructor(db: Database<Slot, string>, windowSize: number) {
    this.#db = db;
    this.#size = windowSize;
  }

  /** The device's window, oldest first, as AcceptedSeqs.add wants it replayed. */
  load(deviceId: string): [seq: number, fingerprint: number][] {
    const slots: Slot[] = [];
    for (const { value } of this.#db.getRange({ start: `${deviceId}/`, end: `${deviceId}0` })) slots.push(value);
    slots.sort((a, b) => a[2] - b[2]);
    // Keep a counter that is ahead of anything in flight from this process.
    const next = slots.length > 0 ? slots[slots.length - 1]![2] + 1 : 0;
    this.#next.set(deviceId, Math.max(next, this.#next.get(deviceId) ?? 0));
    return slots.map(([seq, fingerprint]) => [seq, fingerprint]);
  }

  /** Drops the device's counter (its runtime was forgotten); the next load reads it back from disk. */
  forget(deviceId: string): void {
    this.#next.delete(deviceId);
  }

  /** Issues the put; the caller puts its spool entry in the same event turn so both commit together. */
  record(deviceId: string, seq: number, fingerprint: number): Promise<boolean> {
    if (!this.#next.has(deviceId)) this.load(deviceId);
    const n = this.#next.get(deviceId)!;
    this.#next.set(deviceId, n + 1);
    return this.#db.put(`${deviceId}/${n % this.#size}`, [seq, fingerprint, n]);
  }
}
