/**
 * A node's local, sorted copy of a JetStream bucket (jetstream-bucket.ts,
 * `mirror: true`): the fleet-sized buckets (devices, device status) are read
 * on every handshake and paged by the operator API, and a round trip to NATS
 * per read, or a scan of the bucket per page, would cost more than the work.
 *
 * Two sources write into it:
 * - the bucket's one watch ("the feed"), in stream order, from every node;
 * - this node's own writes, as soon as NATS acknowledges them, so a read
 *   right after a write sees it even when the feed has not delivered it yet.
 * The feed and the acknowledgements race, so a record only ever moves to a
 * higher revision; `feedPosition` (the last revision the feed delivered)
 * tells a late acknowledgement whether the feed has already applied it, and
 * maybe a later delete that the record must not be resurrected from.
 *
 * Values are kept as their JSON text and parsed on each read, so callers get
 * their own object (as from lmdb or NATS) and cannot change the copy.
 */
import { compareKeys, keyId, keyMatches, type BucketKey, type EntriesOptions, type Entry } from './bucket.js';

/** `json` undefined: deleted here before the feed said so (a tombstone). */
type MirrorRecord = { key: BucketKey; json: string | undefined; revision: number };

export class KeyMirror<V> {
  readonly #records = new Map<string, MirrorRecord>();
  /** The keys with a value, in compareKeys order. */
  readonly #sorted: BucketKey[] = [];

  get size(): number {
    return this.#sorted.length;
  }

  get(key: BucketKey): Entry<V> | undefined {
    const record = this.#records.get(keyId(key));
    if (record?.json === undefined) return undefined;
    return { key: record.key, value: JSON.parse(record.json) as V, revision: record.revision };
  }

  /** A change from the feed (in stream order); false when a newer write of this node is already here. */
  applyFeed(key: BucketKey, json: string | undefined, revision: number): boolean {
    const id = keyId(key);
    const current = this.#records.get(id);
    if (current && current.revision >= revision) return false;
    // The feed delivers nothing older for this key after a delete, so no tombstone is needed.
    this.#set(id, key, json, revision, json === undefined);
    return true;
  }

  /** This node's put/create/update, acknowledged by NATS at `revision`. */
  applyWrite(key: BucketKey, json: string, revision: number, feedPosition: number): void {
    // Delivered by the feed already: the record holds this revision or a later one (or its delete).
    if (revision <= feedPosition) return;
    const id = keyId(key);
    const current = this.#records.get(id);
    if (current && current.revision >= revision) return;
    this.#set(id, key, json, revision, false);
  }

  /**
   * This node's delete of the value at `deletedRevision`, acknowledged.
   * NATS does not return the delete marker's revision, but the delete was
   * conditional on `deletedRevision`, so the marker is the next message of
   * this key: a tombstone at `deletedRevision` hides that value and anything
   * older until the feed delivers the marker or a later write.
   */
  applyDelete(key: BucketKey, deletedRevision: number, feedPosition: number): void {
    const id = keyId(key);
    const current = this.#records.get(id);
    if (current ? current.revision > deletedRevision : deletedRevision <= feedPosition) return;
    this.#set(id, key, undefined, deletedRevision, false);
  }

  /** Forgets everything (the stream was re-created); the keys that had values. */
  clear(): BucketKey[] {
    const keys = this.#sorted.splice(0);
    this.#records.clear();
    return keys;
  }

  /**
   * Entries in key order. The mirror may change between two items (the
   * consumer awaits), so each step searches for the key after the last one
   * instead of keeping an index into an array that may have shifted.
   */
  *entries(options: EntriesOptions = {}): Generator<Entry<V>> {
    let cursor: BucketKey | undefined = startOf(options);
    let inclusive = options.after === undefined || (cursor !== options.after);
    for (;;) {
      const index: number = cursor === undefined ? 0 : this.#lowerBound(cursor, inclusive);
      const key = this.#sorted[index];
      if (key === undefined || pastFilter(key, options)) return;
      cursor = key;
      inclusive = false;
      if (!keyMatches(key, options)) continue;
      const entry = this.get(key);
      if (entry) yield entry;
    }
  }

  #set(id: string, key: BucketKey, json: string | undefined, revision: number, forget: boolean): void {
    const had = this.#records.get(id)?.json !== undefined;
    if (forget) this.#records.delete(id);
    else this.#records.set(id, { key, json, revision });
    if (json !== undefined && !had) this.#sorted.splice(this.#lowerBound(key, true), 0, key);
    if (json === undefined && had) this.#sorted.splice(this.#lowerBound(key, true), 1);
  }

  /** The first index whose key is >= `key` (inclusive) or > `key`. */
  #lowerBound(key: BucketKey, inclusive: boolean): number {
    let low = 0;
    let high = this.#sorted.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      const order = compareKeys(this.#sorted[mid]!, key);
      if (order < 0 || (!inclusive && order === 0)) low = mid + 1;
      else high = mid;
    }
    return low;
  }
}

/** Where a filtered listing starts: the later of its filter's first key and `after`. */
function startOf(options: EntriesOptions): BucketKey | undefined {
  const first: BucketKey | undefined =
    options.group !== undefined ? [options.group, ''] : options.prefix !== undefined ? options.prefix : undefined;
  if (options.after === undefined) return first;
  if (first === undefined) return options.after;
  return compareKeys(options.after, first) >= 0 ? options.after : first;
}

/** Keys are sorted, so once one sorts after the filter's range nothing later matches. */
function pastFilter(key: BucketKey, options: EntriesOptions): boolean {
  if (options.group !== undefined) return typeof key === 'string' ? false : key[0] !== options.group;
  if (options.prefix !== undefined) return typeof key !== 'string' || !key.startsWith(options.prefix);
  return false;
}
