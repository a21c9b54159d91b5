/**
 * The durable outbox: each endpoint's events waiting for delivery, in the
 * `webhookOutbox` bucket keyed [endpointId, order key], so an endpoint's
 * entries are its queue in order (lmdb on one process, a mirrored JetStream
 * bucket in a cluster, where every node appends the events that arose on it).
 * An event is in the outbox once `append` resolves; it leaves when it was
 * delivered, or moves to the endpoint's failed list (`webhookFailed`, the
 * same keys) when its retries ran out, from where a replay appends it again
 * under a new order key with the same event id.
 *
 * Order keys are the time of appending (ms, padded), a counter within the
 * millisecond and the node's id: they never go backwards within a process
 * even when the clock does, and in a cluster order follows time across
 * nodes (docs/webhooks.md says what that means when node clocks differ).
 */
import { collect, type Bucket, type Entry } from '../stores/bucket.js';
import type { FailedEntry, OutboxEntry, WebhookEvent } from './types.js';

/** The most `queued` counts (the API says "at least" at this figure). */
export const QUEUED_COUNT_CAP = 10_000;

export type Queued = Entry<OutboxEntry> & { readonly key: readonly [string, string] };

export class WebhookOutbox {
  readonly #outbox: Bucket<OutboxEntry>;
  readonly #failed: Bucket<FailedEntry>;
  readonly #nodeId: string;
  readonly #now: () => number;
  #lastMs = 0;
  #seq = 0;

  constructor(deps: { outbox: Bucket<OutboxEntry>; failed: Bucket<FailedEntry>; nodeId: string; now?: () => number }) {
    this.#outbox = deps.outbox;
    this.#failed = deps.failed;
    this.#nodeId = deps.nodeId;
    this.#now = deps.now ?? Date.now;
  }

  /** Resolves once the event is stored (committed in lmdb, acknowledged by JetStream). */
  async append(endpointId: string, event: WebhookEvent): Promise<void> {
    await this.#outbox.put([endpointId, this.#orderKey()], { event, queuedAt: this.#now(), attempts: 0 });
  }

  /** The oldest event waiting for `endpointId`. */
  async head(endpointId: string): Promise<Queued | undefined> {
    const [first] = await collect(this.#outbox.entries({ group: endpointId }), 1);
    return first as Queued | undefined;
  }

  /**
   * How many events wait for `endpointId`, counted up to `cap`: a receiver dead for a day may have a large queue,
   * and lmdb lists it without yielding to the event loop, so an operator's GET must not walk all of it.
   */
  async queued(endpointId: string, cap = QUEUED_COUNT_CAP): Promise<number> {
    let count = 0;
    for await (const _ of this.#outbox.entries({ group: endpointId })) {
      if (++count >= cap) break;
    }
    return count;
  }

  async delivered(entry: Queued): Promise<void> {
    await this.#outbox.delete(entry.key);
  }

  /** Records a failed attempt on the entry (so the retry window survives a restart); the entry as it is now. */
  async attemptFailed(entry: Queued, reason: string, at: number): Promise<OutboxEntry> {
    const value: OutboxEntry = { ...entry.value, attempts: entry.value.attempts + 1, firstFailureAt: entry.value.firstFailureAt ?? at, lastFailure: reason };
    await this.#outbox.put(entry.key, value);
    return value;
  }

  /** Moves the entry to the endpoint's failed list (written there before it leaves the outbox). */
  async giveUp(entry: Queued, value: OutboxEntry, reason: string, at: number): Promise<void> {
    await this.#failed.put(entry.key, { ...value, failedAt: at, reason });
    await this.#outbox.delete(entry.key);
  }

  /** The endpoint's failed list, oldest first, paged by the order key of the last entry seen. */
  async failedList(endpointId: string, opts: { after?: string; limit: number }): Promise<{ key: string; entry: FailedEntry }[]> {
    const entries = await collect(this.#failed.entries({ group: endpointId, ...(opts.after !== undefined ? { after: [endpointId, opts.after] as const } : {}) }), opts.limit);
    return entries.map((entry) => ({ key: (entry.key as readonly [string, string])[1], entry: entry.value }));
  }

  /** Queues failed events again (all, or those with these event ids), at the end of the queue; how many. */
  async replay(endpointId: string, eventIds?: ReadonlySet<string>): Promise<number> {
    let replayed = 0;
    for (const entry of await collect(this.#failed.entries({ group: endpointId }))) {
      if (eventIds && !eventIds.has(entry.value.event.id)) continue;
      await this.append(endpointId, entry.value.event);
      await this.#failed.delete(entry.key);
      replayed++;
    }
    return replayed;
  }

  /** Forgets everything of a deleted endpoint. */
  async dropEndpoint(endpointId: string): Promise<void> {
    for (const bucket of [this.#outbox, this.#failed] as Bucket<unknown>[]) {
      for (const entry of await collect(bucket.entries({ group: endpointId }))) await bucket.delete(entry.key);
    }
  }

  /** Calls `listener` with the endpoint of every event appended, by this node or (cluster) any other. */
  onAppended(listener: (endpointId: string) => void): () => void {
    return this.#outbox.watch((change) => {
      if (change.value !== undefined && change.value.attempts === 0 && typeof change.key !== 'string') listener(change.key[0]);
    });
  }

  #orderKey(): string {
    const now = this.#now();
    if (now > this.#lastMs) {
      this.#lastMs = now;
      this.#seq = 0;
    } else this.#seq++;
    return `${String(this.#lastMs).padStart(15, '0')}-${String(this.#seq).padStart(6, '0')}-${this.#nodeId}`;
  }
}
