/**
 * A Bucket on a NATS JetStream key-value bucket: cluster mode's backend.
 * Revisions are the stream's sequence numbers, and create/update/delete with
 * a revision are settled by JetStream's expected-last-sequence check, so two
 * nodes never both win a race. Keys are encoded by cluster/nats-names.ts
 * (a pair is two tokens); values are JSON, readable with `nats kv get`.
 *
 * Reads go to JetStream, or with `mirror: true` to a local sorted copy fed by
 * the bucket's one watch (stores/key-mirror.ts), which this node's own writes
 * also enter as soon as they are acknowledged (read-your-writes).
 *
 * When the NATS connection drops: writes and JetStream reads fail once the
 * request timeout passes, with PW_ERR_NATS_UNAVAILABLE (the NATS error as its
 * cause; other errors, such as a value over the size limit, come as NATS
 * throws them). The outcome of a write that failed so is unknown (the client
 * may have sent it before the connection went): a caller re-reads, and a
 * retried create or update is settled by the revision. A mirror keeps
 * answering from what it last knew and says so with `stale`; it cannot win
 * a race on a stale revision, because JetStream checks every conditional
 * write. On reconnect the watch resumes after the last revision it delivered
 * (stores/kv-feed.ts), and `stale` is false again once it has caught up.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import { Kvm, type KV, type KvEntry, type KvWatchEntry } from '@nats-io/kv';
import { decodeKey, encodeKey, KEY_FILTERS } from '../cluster/nats-names.js';
import { PulsewireError } from '../errors/catalog.js';
import { silentLogger, type StorageLogger } from '../storage/logger.js';
import { compareKeys, keyMatches, type Bucket, type BucketKey, type Change, type EntriesOptions, type Entry } from './bucket.js';
import { KeyMirror } from './key-mirror.js';
import { KvFeed } from './kv-feed.js';

export type JetStreamBucketOptions = {
  /** Keep a local sorted copy for get and entries (fleet-sized buckets: devices, device status). */
  mirror?: boolean;
  /** Without a watch, watch() throws: for buckets nobody watches, so no node receives all their writes. */
  watch?: boolean;
  logger?: StorageLogger;
};

export type OpenJetStreamBucketOptions = JetStreamBucketOptions & {
  /** Copies of the stream in a NATS cluster (1, 3 or 5); used when the bucket is created, not for an existing one. */
  replicas?: number;
  /** Largest value in bytes; NATS's default max_payload is 1 MiB. */
  maxValueSize?: number;
  /** JetStream request timeout: how long a read or write waits before failing. */
  timeoutMs?: number;
};

const DEFAULT_MAX_VALUE_SIZE = 1024 * 1024;
/** Reads in flight while listing a bucket without a mirror. */
const LIST_READS_AT_ONCE = 256;

/**
 * Opens (creating if absent) the bucket `name` and resolves once its watch
 * runs and, with a mirror, once the mirror holds the whole bucket. An existing
 * bucket is opened with the settings it was created with.
 */
export async function openJetStreamBucket<V>(nc: NatsConnection, name: string, options: OpenJetStreamBucketOptions = {}): Promise<JetStreamBucket<V>> {
  const replicas = options.replicas ?? 1;
  const kvm = new Kvm(jetstream(nc, { timeout: options.timeoutMs ?? 5_000 }));
  const kv = await kvm.create(name, {
    history: 1,
    replicas,
    maxValueSize: options.maxValueSize ?? DEFAULT_MAX_VALUE_SIZE,
    description: `Pulsewire ${name}`,
    // Direct gets may be answered by a replica that lags the leader; with one copy there is no replica.
    allow_direct: replicas === 1,
  });
  const bucket = new JetStreamBucket<V>(name, kv, nc, options);
  await bucket.start();
  return bucket;
}

export class JetStreamBucket<V> implements Bucket<V> {
  readonly name: string;
  readonly #kv: KV;
  readonly #feed: KvFeed | undefined;
  readonly #mirror: KeyMirror<V> | undefined;
  readonly #listeners = new Set<(change: Change<V>) => void>();
  readonly #writes = new Set<Promise<unknown>>();
  readonly #log: StorageLogger;
  readonly #nc: NatsConnection;

  constructor(name: string, kv: KV, nc: NatsConnection, options: JetStreamBucketOptions = {}) {
    this.name = name;
    this.#kv = kv;
    this.#nc = nc;
    this.#log = options.logger ?? silentLogger;
    if (options.mirror) this.#mirror = new KeyMirror<V>();
    if (options.mirror || options.watch !== false) {
      this.#feed = new KvFeed(kv, nc, {
        name,
        from: options.mirror ? 'last-values' : 'new',
        onEntry: (entry) => this.#onFeedEntry(entry),
        onRestart: () => this.#onFeedRestart(),
        logger: this.#log,
      });
    }
  }

  /** Starts the watch; resolves once caught up (openJetStreamBucket calls it). */
  async start(): Promise<void> {
    await this.#feed?.start();
  }

  /** A mirror that may be behind: the connection is down or its watch is catching up after a reconnect. */
  get stale(): boolean {
    return this.#feed !== undefined && !this.#feed.caughtUp;
  }

  async get(key: BucketKey): Promise<Entry<V> | undefined> {
    if (this.#mirror) return this.#mirror.get(key);
    return this.#read(key);
  }

  create(key: BucketKey, value: V): Promise<number | undefined> {
    const json = JSON.stringify(value);
    // The KV client's create also succeeds over a deleted key, checked against its delete marker.
    return this.#write(key, json, () => this.#kv.create(encodeKey(key), json));
  }

  update(key: BucketKey, value: V, revision: number): Promise<number | undefined> {
    if (!(revision > 0)) return Promise.resolve(undefined); // the KV client throws on 0; no entry has it
    const json = JSON.stringify(value);
    return this.#write(key, json, () => this.#kv.update(encodeKey(key), json, revision));
  }

  async put(key: BucketKey, value: V): Promise<number> {
    const json = JSON.stringify(value);
    return (await this.#write(key, json, () => this.#kv.put(encodeKey(key), json)))!;
  }

  async delete(key: BucketKey, revision?: number): Promise<boolean> {
    if (revision !== undefined) return revision > 0 && this.#deleteAt(key, revision);
    // Unconditional: delete whatever is there now, still checked by revision so that the
    // mirror's tombstone is exact (key-mirror.ts); a write in between means one more round.
    for (;;) {
      const current = await this.#read(key);
      if (!current) return false;
      if (await this.#deleteAt(key, current.revision)) return true;
    }
  }

  async *entries(options: EntriesOptions = {}): AsyncGenerator<Entry<V>> {
    if (this.#mirror) {
      yield* this.#mirror.entries(options);
      return;
    }
    // The keys under the narrowest subject filter, from the stream's own subject list, then the
    // last value of each. (The KV client's history() and keys() count the messages pending when
    // they start and can wait forever for one that a concurrent write replaced meanwhile.)
    const filter = options.group !== undefined ? KEY_FILTERS.group(options.group)
      : options.prefix !== undefined ? KEY_FILTERS.strings
      : options.after !== undefined && typeof options.after !== 'string' ? KEY_FILTERS.pairs
      : KEY_FILTERS.all;
    let kvKeys: string[];
    try {
      const jsm = await jetstreamManager(this.#nc);
      const info = await jsm.streams.info(`KV_${this.name}`, { subjects_filter: `$KV.${this.name}.${filter}` });
      kvKeys = Object.keys(info.state.subjects ?? {}).map((subject) => subject.slice(`$KV.${this.name}.`.length));
    } catch (err) {
      throw this.#unavailable(err);
    }
    const wanted = kvKeys.map((kvKey) => decodeKey(kvKey)).filter((key) => keyMatches(key, options)).sort(compareKeys);
    for (let i = 0; i < wanted.length; i += LIST_READS_AT_ONCE) {
      const read = await Promise.all(wanted.slice(i, i + LIST_READS_AT_ONCE).map((key) => this.#read(key)));
      for (const entry of read) if (entry) yield entry; // deleted since, or a delete marker
    }
  }

  watch(listener: (change: Change<V>) => void): () => void {
    if (!this.#feed) throw new Error(`bucket ${this.name} was opened without a watch`);
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async flush(): Promise<void> {
    await Promise.allSettled([...this.#writes]);
  }

  /** Stops the watch; the connection is the caller's. */
  close(): void {
    this.#feed?.close();
  }

  async #deleteAt(key: BucketKey, revision: number): Promise<boolean> {
    const done = await this.#track(async () => {
      await this.#kv.delete(encodeKey(key), { previousSeq: revision });
      return true;
    });
    if (done) this.#mirror?.applyDelete(key, revision, this.#feed!.position);
    // Nobody watches this bucket, so nobody needs the delete marker; left in place, every deleted key
    // would stay a subject of the stream, and listing a group costs in proportion to all of them.
    if (done && !this.#feed) void this.#track(() => this.#dropMarker(key));
    return done !== undefined;
  }

  /**
   * Purges the delete marker of `key` and what came before it, but nothing
   * after: the purge stops below the marker's own sequence + 1, so a key
   * created again meanwhile keeps its new value.
   */
  async #dropMarker(key: BucketKey): Promise<void> {
    const kvKey = encodeKey(key);
    const marker = await this.#kv.get(kvKey);
    if (!marker || marker.operation === 'PUT') return;
    const jsm = await jetstreamManager(this.#nc);
    await jsm.streams.purge(`KV_${this.name}`, { filter: `$KV.${this.name}.${kvKey}`, seq: marker.revision + 1 });
  }

  /** A write whose revision check may fail: undefined then, anything else is thrown. */
  async #write(key: BucketKey, json: string, write: () => Promise<number>): Promise<number | undefined> {
    const revision = await this.#track(write);
    if (revision !== undefined) this.#mirror?.applyWrite(key, json, revision, this.#feed!.position);
    return revision;
  }

  async #read(key: BucketKey): Promise<Entry<V> | undefined> {
    try {
      return toEntry<V>(key, await this.#kv.get(encodeKey(key)));
    } catch (err) {
      throw this.#unavailable(err);
    }
  }

  #track<T>(write: () => Promise<T>): Promise<T | undefined> {
    const settled = write().catch((err: unknown) => {
      if (isWrongRevision(err)) return undefined;
      throw this.#unavailable(err);
    });
    const tracked = settled.catch(() => undefined).finally(() => this.#writes.delete(tracked));
    this.#writes.add(tracked);
    return settled;
  }

  /** A NATS outage as the catalog's error, so routes answer 503 and logs name the bucket. */
  #unavailable(err: unknown): unknown {
    const outage = err instanceof Error && (UNAVAILABLE.has(err.name) || (err instanceof JetStreamApiError && err.status === 503));
    return outage ? new PulsewireError('PW_ERR_NATS_UNAVAILABLE', `bucket ${this.name}: ${err.message}`, { cause: err }) : err;
  }

  #onFeedEntry(entry: KvWatchEntry): void {
    const key = decodeKey(entry.key);
    const json = entry.operation === 'PUT' ? new TextDecoder().decode(entry.value) : undefined;
    this.#mirror?.applyFeed(key, json, entry.revision);
    if (this.#listeners.size === 0) return;
    const change: Change<V> = { key, value: json === undefined ? undefined : (JSON.parse(json) as V), revision: entry.revision };
    for (const listener of this.#listeners) {
      try {
        listener(change);
      } catch (err) {
        this.#log.error({ err, bucket: this.name }, 'bucket watcher threw');
      }
    }
  }

  /** The stream was re-created: every key the mirror held is gone until the feed delivers it again. */
  #onFeedRestart(): void {
    for (const key of this.#mirror?.clear() ?? []) {
      for (const listener of this.#listeners) listener({ key, value: undefined, revision: 0 });
    }
  }
}

/** What the NATS and JetStream clients throw when the server is out of reach or not ready. */
const UNAVAILABLE = new Set(['TimeoutError', 'NoResponders', 'ClosedConnectionError', 'DrainingConnectionError', 'ConnectionError', 'RequestError', 'JetStreamNotEnabled']);

/** JetStream's answer to a create, update or delete whose expected revision did not hold. */
function isWrongRevision(err: unknown): boolean {
  return err instanceof JetStreamApiError && (err.code === JetStreamApiCodes.StreamWrongLastSequence || err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown);
}

function toEntry<V>(key: BucketKey, entry: KvEntry | null): Entry<V> | undefined {
  if (!entry || entry.operation !== 'PUT') return undefined;
  return { key, value: entry.json<V>(), revision: entry.revision };
}
