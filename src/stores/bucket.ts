/**
 * A key-value bucket with revisions: the one shape every shared store of the
 * hub is written against (the device registry, device status and presence,
 * commands, state, jobs, leases, ...). It is the shape of nats.js's own KV
 * client: `get`, `create` (only if absent), `update` (only if unchanged since
 * a revision) and `watch`. Races are settled by the revision, never by a
 * read-then-write, so two hub nodes never both win one.
 *
 * Two implementations, chosen once at start (stores/open-stores.ts):
 * - lmdb-bucket.ts: one hub process, today's lmdb files; revisions are kept
 *   in memory, which is exact because that process is the only writer.
 * - jetstream-bucket.ts: cluster mode, a NATS JetStream key-value bucket;
 *   revisions are the stream's sequence numbers.
 * One contract suite (test/stores/bucket-contract.test.ts) runs against both.
 *
 * Keys are a string or a pair of strings (a device's command: [deviceId,
 * commandId]); entries come back in key order, pairs grouped by their first
 * part, so a device's commands are its queue in creation order.
 */

export type BucketKey = string | readonly [string, string];

export type Entry<V> = { readonly key: BucketKey; readonly value: V; readonly revision: number };

/** A change seen by a watcher; `value` undefined means the key was deleted. */
export type Change<V> = { readonly key: BucketKey; readonly value: V | undefined; readonly revision: number };

export type EntriesOptions = {
  /** Only pair keys whose first part is this (a device's commands). */
  group?: string;
  /** Only string keys that start with this. */
  prefix?: string;
  /** Only keys after this one (exclusive): paging by cursor. */
  after?: BucketKey;
};

export interface Bucket<V> {
  readonly name: string;
  get(key: BucketKey): Promise<Entry<V> | undefined>;
  /** Stores `value` only if the key is absent; its new revision, or undefined when the key exists. */
  create(key: BucketKey, value: V): Promise<number | undefined>;
  /** Stores `value` only if the key is still at `revision`; its new revision, or undefined when it changed. */
  update(key: BucketKey, value: V, revision: number): Promise<number | undefined>;
  /** Stores `value` whatever was there (a record only one writer ever writes). */
  put(key: BucketKey, value: V): Promise<number>;
  /** Deletes the key (only if still at `revision` when given); false when it was absent or changed. */
  delete(key: BucketKey, revision?: number): Promise<boolean>;
  /** Entries in key order. */
  entries(options?: EntriesOptions): AsyncIterable<Entry<V>>;
  /** Calls `listener` for every change from now on, by this process or (cluster) any node. */
  watch(listener: (change: Change<V>) => void): () => void;
  /** Resolves once every write issued so far has settled. */
  flush(): Promise<void>;
}

/** Key order: strings before pairs, then by parts (the order lmdb keeps its keys in). */
export function compareKeys(a: BucketKey, b: BucketKey): number {
  if (typeof a === 'string' || typeof b === 'string') {
    if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
    return typeof a === 'string' ? -1 : 1;
  }
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0;
}

/** Whether `key` passes the filters of `options`. */
export function keyMatches(key: BucketKey, options: EntriesOptions): boolean {
  if (options.group !== undefined && (typeof key === 'string' || key[0] !== options.group)) return false;
  if (options.prefix !== undefined && (typeof key !== 'string' || !key.startsWith(options.prefix))) return false;
  if (options.after !== undefined && compareKeys(key, options.after) <= 0) return false;
  return true;
}

/** One string per key, for maps (device ids and command ids never contain NUL). */
export function keyId(key: BucketKey): string {
  return typeof key === 'string' ? key : `${key[0]}\u0000${key[1]}`;
}

/** Collects an async iterable (for small results: a device's commands, a job's targets). */
export async function collect<T>(items: AsyncIterable<T>, limit = Infinity): Promise<T[]> {
  const out: T[] = [];
  if (limit <= 0) return out;
  for await (const item of items) {
    out.push(item);
    if (out.length >= limit) break;
  }
  return out;
}
