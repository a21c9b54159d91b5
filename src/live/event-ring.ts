/**
 * The recent ticks, kept so an SSE client that reconnects with Last-Event-ID
 * gets what it missed instead of a whole snapshot. Bounded by ticks and by
 * readings, whichever comes first: at 10,000 readings/s the reading bound is
 * what holds memory down.
 */
import { batchSize, type LiveBatch } from './types.js';

export type RingEntry = { seq: number; batch: LiveBatch };

export class EventRing {
  readonly #entries: RingEntry[] = [];
  readonly #maxTicks: number;
  readonly #maxItems: number;
  #items = 0;

  constructor(maxTicks: number, maxItems: number) {
    this.#maxTicks = maxTicks;
    this.#maxItems = maxItems;
  }

  push(seq: number, batch: LiveBatch): void {
    this.#entries.push({ seq, batch });
    this.#items += batchSize(batch);
    while (this.#entries.length > 1 && (this.#entries.length > this.#maxTicks || this.#items > this.#maxItems)) {
      this.#items -= batchSize(this.#entries.shift()!.batch);
    }
  }

  /**
   * The entries after `seq`, or undefined when some of them are gone (the
   * client must start again from a snapshot). `currentSeq` is the hub's
   * latest seq: ticks with nothing in them have no entry but still count.
   */
  since(seq: number, currentSeq: number): RingEntry[] | undefined {
    if (!Number.isSafeInteger(seq) || seq < 0 || seq > currentSeq) return undefined;
    if (seq === currentSeq) return [];
    const oldest = this.#entries[0];
    if (oldest === undefined || oldest.seq > seq + 1) return undefined;
    return this.#entries.filter((entry) => entry.seq > seq);
  }
}
