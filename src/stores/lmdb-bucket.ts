/**
 * A Bucket on one lmdb sub-database: the single-process backend, on the same
 * files and keys the hub has always written (a pair key is lmdb's array key).
 *
 * Revisions live in memory. One process is the only writer of its lmdb
 * environment, so a counter it keeps is exact: a key gets a revision the
 * first time it is read after start, and a new one at every write. An
 * expected-revision update is a check and a write in one synchronous step,
 * which nothing can interleave with in one process. A key's revision is
 * kept while the key exists (a caller may hold it for hours: a firing
 * alert's) and dropped when it is deleted, so the table is as large as the
 * keys this run has touched that are still stored (retention bounds those).
 *
 * Writes use lmdb's asynchronous put (everything issued in one event turn is
 * one commit) and resolve once committed. Until then reads would still see
 * the old record, so uncommitted writes sit in an overlay that reads consult
 * first; a write that fails to commit is taken back from it.
 */
import type { Database } from 'lmdb';
import { keyId, keyMatches, compareKeys, type Bucket, type BucketKey, type Change, type EntriesOptions, type Entry } from './bucket.js';

type LmdbKey = string | [string, string];
/** An uncommitted write: `value` undefined is a delete. */
type Pending<V> = { key: BucketKey; value: V | undefined; revision: number };

export class LmdbBucket<V> implements Bucket<V> {
  readonly name: string;
  readonly #db: Database<V, LmdbKey>;
  readonly #revisions = new Map<string, number>();
  readonly #overlay = new Map<string, Pending<V>>();
  /**
   * The overlay's pair keys by group: a group's listing (a device's command
   * queue, read on every create and delivery) merges its own pending writes,
   * not a copy of every device's.
   */
  readonly #overlayByGroup = new Map<string, Map<string, Pending<V>>>();
  readonly #writes = new Set<Promise<unknown>>();
  readonly #watchers = new Set<(change: Change<V>) => void>();
  #nextRevision = 1;

  constructor(name: string, db: Database<V, LmdbKey>) {
    this.name = name;
    this.#db = db;
  }

  async get(key: BucketKey): Promise<Entry<V> | undefined> {
    return this.#read(key);
  }

  /** What lmdb has committed, past the overlay: what a process started now would read (crash tests). */
  committed(key: BucketKey): V | undefined {
    return this.#db.get(toLmdbKey(key));
  }

  async create(key: BucketKey, value: V): Promise<number | undefined> {
    if (this.#read(key)) return undefined;
    return this.#write(key, value);
  }

  async update(key: BucketKey, value: V, revision: number): Promise<number | undefined> {
    if (this.#read(key)?.revision !== revision) return undefined;
    return this.#write(key, value);
  }

  put(key: BucketKey, value: V): Promise<number> {
    return this.#write(key, value);
  }

  async delete(key: BucketKey, revision?: number): Promise<boolean> {
    const current = this.#read(key);
    if (!current || (revision !== undefined && current.revision !== revision)) return false;
    await this.#write(key, undefined);
    return true;
  }

  async *entries(options: EntriesOptions = {}): AsyncGenerator<Entry<V>> {
    yield* this.entriesNow(options);
  }

  /**
   * Entries in key order, read synchronously: uncommitted writes merged into
   * lmdb's committed range. lmdb does not keep compareKeys' order when a
   * sub-database holds both kinds of key: ordered-binary writes a pair as
   * `a\0b`, so [a, b] sorts right after the string a, among the strings.
   * Strings and pairs are therefore listed in two passes, each skipping the
   * other kind; within one kind lmdb's order is compareKeys' order.
   */
  *entriesNow(options: EntriesOptions = {}): Generator<Entry<V>> {
    if (options.group === undefined) yield* this.#entriesOfKind('string', options);
    if (options.prefix === undefined) yield* this.#entriesOfKind('pair', options);
  }

  *#entriesOfKind(kind: 'string' | 'pair', options: EntriesOptions): Generator<Entry<V>> {
    const range = rangeOf(kind, options);
    if (!range) return;
    const ofKind = (key: BucketKey): boolean => (typeof key === 'string') === (kind === 'string');
    const candidates = kind === 'pair' && options.group !== undefined ? (this.#overlayByGroup.get(options.group)?.values() ?? []) : this.#overlay.values();
    const pending = [...candidates].filter((p) => ofKind(p.key) && keyMatches(p.key, options)).sort((a, b) => compareKeys(a.key, b.key));
    let next = 0;
    for (const { key, value } of this.#db.getRange(range)) {
      const k = key as BucketKey;
      if (!ofKind(k)) continue;
      // Within one kind the range is sorted: once past the group or prefix, nothing later matches.
      if (options.group !== undefined && k[0] !== options.group) break;
      if (options.prefix !== undefined && !(k as string).startsWith(options.prefix)) break;
      if (!keyMatches(k, options)) continue;
      // Uncommitted keys that sort before this one come first.
      for (; next < pending.length && compareKeys(pending[next]!.key, k) < 0; next++) {
        const p = pending[next]!;
        if (p.value !== undefined) yield { key: p.key, value: p.value, revision: p.revision };
      }
      const id = keyId(k);
      const overlaid = this.#overlay.get(id);
      if (overlaid) {
        if (next < pending.length && compareKeys(pending[next]!.key, k) === 0) next++;
        if (overlaid.value !== undefined) yield { key: k, value: overlaid.value, revision: overlaid.revision };
        continue;
      }
      yield { key: k, value, revision: this.#revisionOf(id) };
    }
    for (; next < pending.length; next++) {
      const p = pending[next]!;
      if (p.value !== undefined) yield { key: p.key, value: p.value, revision: p.revision };
    }
  }

  watch(listener: (change: Change<V>) => void): () => void {
    this.#watchers.add(listener);
    return () => this.#watchers.delete(listener);
  }

  async flush(): Promise<void> {
    await Promise.allSettled([...this.#writes]);
  }

  #read(key: BucketKey): Entry<V> | undefined {
    const id = keyId(key);
    const pending = this.#overlay.get(id);
    if (pending) return pending.value === undefined ? undefined : { key, value: pending.value, revision: pending.revision };
    const value = this.#db.get(toLmdbKey(key));
    if (value === undefined) {
      this.#revisions.delete(id);
      return undefined;
    }
    return { key, value, revision: this.#revisionOf(id) };
  }

  #revisionOf(id: string): number {
    let revision = this.#revisions.get(id);
    if (revision === undefined) this.#revisions.set(id, (revision = this.#nextRevision++));
    return revision;
  }

  #write(key: BucketKey, value: V | undefined): Promise<number> {
    const id = keyId(key);
    const revision = this.#nextRevision++;
    const entry: Pending<V> = { key, value, revision };
    this.#addPending(id, entry);
    this.#revisions.set(id, revision);
    const lmdbKey = toLmdbKey(key);
    const write = (value === undefined ? this.#db.remove(lmdbKey) : this.#db.put(lmdbKey, value)).then(
      () => {
        this.#removePending(id, entry);
        if (value === undefined && this.#revisions.get(id) === revision) this.#revisions.delete(id);
        for (const listener of this.#watchers) listener({ key, value, revision });
        return revision;
      },
      (err: unknown) => {
        // Not stored: reads go back to what lmdb holds, under a revision no caller has seen.
        if (this.#removePending(id, entry)) this.#revisions.delete(id);
        throw err;
      },
    );
    const tracked = write.catch(() => undefined).finally(() => this.#writes.delete(tracked));
    this.#writes.add(tracked);
    return write;
  }

  #addPending(id: string, entry: Pending<V>): void {
    this.#overlay.set(id, entry);
    if (typeof entry.key === 'string') return;
    let group = this.#overlayByGroup.get(entry.key[0]);
    if (!group) this.#overlayByGroup.set(entry.key[0], (group = new Map()));
    group.set(id, entry);
  }

  /** Takes `entry` out of the overlay unless a later write replaced it; says whether it did. */
  #removePending(id: string, entry: Pending<V>): boolean {
    if (this.#overlay.get(id) !== entry) return false;
    this.#overlay.delete(id);
    if (typeof entry.key !== 'string') {
      const group = this.#overlayByGroup.get(entry.key[0]);
      group?.delete(id);
      if (group?.size === 0) this.#overlayByGroup.delete(entry.key[0]);
    }
    return true;
  }
}

function toLmdbKey(key: BucketKey): LmdbKey {
  return typeof key === 'string' ? key : [key[0], key[1]];
}

type Range = { start?: LmdbKey; end?: LmdbKey; exclusiveStart?: boolean };

/** The lmdb range holding the keys of one kind that `options` can match; undefined when none can. */
function rangeOf(kind: 'string' | 'pair', options: EntriesOptions): Range | undefined {
  const after = options.after;
  if (kind === 'string') {
    if (after !== undefined && typeof after !== 'string') return undefined; // every string sorts before every pair
    const prefix = options.prefix;
    if (after !== undefined && (prefix === undefined || after >= prefix)) return { start: after, exclusiveStart: true };
    return prefix !== undefined ? { start: prefix } : {};
  }
  const afterPair = after !== undefined && typeof after !== 'string' ? toLmdbKey(after) : undefined;
  if (options.group !== undefined) {
    if (afterPair && afterPair[0] === options.group) return { start: afterPair, end: [options.group, '\uffff'], exclusiveStart: true };
    if (afterPair && afterPair[0] > options.group) return undefined;
    return { start: [options.group, ''], end: [options.group, '\uffff'] };
  }
  return afterPair ? { start: afterPair, exclusiveStart: true } : {};
}
