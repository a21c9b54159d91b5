/**
 * The one watch a JetStreamBucket keeps on its KV bucket: every change, from
 * every node, in stream order, each revision once. It survives the NATS
 * connection dropping and the server restarting.
 *
 * nats.js's KV watch is an ordered push consumer. It recovers from a gap by
 * itself, but after a server restart it notices a lost consumer only after
 * two missed idle heartbeats (about a minute), and it stops for good when the
 * connection closes. So on every reconnect the feed starts a new watch from
 * the revision after the last one it delivered (`resumeFromRevision`),
 * retrying with backoff while JetStream is still recovering its streams.
 *
 * `caughtUp` is false from a disconnect until the new watch has delivered
 * everything the stream held when it started: while it is false, a copy fed
 * by this feed may be stale. A stream whose last revision is lower than one
 * already delivered was deleted and created again; the feed starts over from
 * the beginning and says so with `onRestart` (noticed when a watch starts,
 * that is at the next reconnect: a stream deleted under a live connection is
 * not, and must not happen to a running cluster). Delete markers must stay in
 * the stream (no purgeDeletes): a resumed watch learns of a delete from them.
 */
import type { NatsConnection, QueuedIterator, Status } from '@nats-io/transport-node';
import { KvWatchInclude, type KV, type KvWatchEntry, type KvWatchOptions } from '@nats-io/kv';
import { silentLogger, type StorageLogger } from '../storage/logger.js';

export type KvFeedOptions = {
  /** The bucket's name, for the log. */
  name: string;
  /** 'last-values': first the current value of every key (a mirror); 'new': only what is written after start(). */
  from: 'last-values' | 'new';
  onEntry: (entry: KvWatchEntry) => void;
  /** The stream was re-created: whatever the entries built is void, they come again from the start. */
  onRestart?: () => void;
  logger?: StorageLogger;
};

const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 5_000;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class KvFeed {
  readonly #kv: KV;
  readonly #nc: NatsConnection;
  readonly #options: KvFeedOptions;
  readonly #log: StorageLogger;
  /** The last revision delivered to onEntry. */
  #position = 0;
  /** The stream's last revision when the current watch started: caught up once delivered. */
  #target = 0;
  #connected = true;
  #watch: { stop(): void } | undefined;
  #generation = 0;
  #resubscribing: Promise<void> | undefined;
  #resubscribeAgain = false;
  #closed = false;
  #caughtUpWaiters: Array<() => void> = [];
  #statuses: AsyncIterable<Status> | undefined;

  constructor(kv: KV, nc: NatsConnection, options: KvFeedOptions) {
    this.#kv = kv;
    this.#nc = nc;
    this.#options = options;
    this.#log = options.logger ?? silentLogger;
  }

  /** The last revision delivered; a write at or below it has reached onEntry. */
  get position(): number {
    return this.#position;
  }

  get caughtUp(): boolean {
    return this.#connected && this.#watch !== undefined && this.#position >= this.#target;
  }

  /** Starts watching; resolves once caught up, rejects if NATS refuses the first watch. */
  async start(): Promise<void> {
    // 'new' starts after the stream's current last revision, and resumes from there too.
    if (this.#options.from === 'new') this.#position = (await this.#kv.status()).streamInfo.state.last_seq;
    await this.#subscribe();
    void this.#followConnection();
    await this.whenCaughtUp();
  }

  whenCaughtUp(): Promise<void> {
    if (this.caughtUp) return Promise.resolve();
    return new Promise((resolve) => this.#caughtUpWaiters.push(resolve));
  }

  close(): void {
    this.#closed = true;
    this.#generation += 1;
    this.#watch?.stop();
    this.#watch = undefined;
    (this.#statuses as Partial<QueuedIterator<Status>> | undefined)?.stop?.();
  }

  async #subscribe(): Promise<void> {
    const generation = ++this.#generation;
    this.#watch?.stop();
    this.#watch = undefined;
    const resume = this.#position > 0 || this.#options.from === 'new';
    const options: KvWatchOptions = resume ? { resumeFromRevision: this.#position + 1 } : { include: KvWatchInclude.LastValue };
    const watch = await this.#kv.watch(options);
    if (generation !== this.#generation) {
      watch.stop();
      return;
    }
    let last: number;
    try {
      last = (await this.#kv.status()).streamInfo.state.last_seq;
    } catch (err) {
      watch.stop();
      throw err;
    }
    if (generation !== this.#generation) {
      watch.stop();
      return;
    }
    if (last < this.#position) {
      watch.stop();
      this.#log.warn({ bucket: this.#options.name, last, position: this.#position }, 'KV stream was re-created; reading it again from the start');
      this.#position = 0;
      this.#options.onRestart?.();
      return this.#subscribe();
    }
    this.#watch = watch;
    this.#target = last;
    void this.#pump(watch, generation);
    this.#checkCaughtUp();
  }

  async #pump(watch: AsyncIterable<KvWatchEntry>, generation: number): Promise<void> {
    try {
      for await (const entry of watch) {
        if (generation !== this.#generation) break;
        if (entry.revision <= this.#position) continue; // already delivered before a resume
        this.#position = entry.revision;
        try {
          this.#options.onEntry(entry);
        } catch (err) {
          this.#log.error({ err, bucket: this.#options.name, key: entry.key }, 'KV feed: a change could not be applied');
        }
        this.#checkCaughtUp();
      }
    } catch (err) {
      this.#log.warn({ err, bucket: this.#options.name }, 'KV watch ended with an error');
    }
    // Ended without us asking (consumer gone, connection closed): start again unless closing.
    if (generation === this.#generation && !this.#closed && !this.#nc.isClosed()) {
      this.#watch = undefined;
      void this.#resubscribe();
    }
  }

  /** One watch at a time; a reconnect during a resubscribe asks for one more. */
  #resubscribe(): Promise<void> {
    if (this.#resubscribing) {
      this.#resubscribeAgain = true;
      return this.#resubscribing;
    }
    this.#resubscribing = (async () => {
      let delayMs = RETRY_MIN_MS;
      do {
        this.#resubscribeAgain = false;
        while (!this.#closed && !this.#nc.isClosed()) {
          try {
            await this.#subscribe();
            break;
          } catch (err) {
            this.#log.warn({ err, bucket: this.#options.name, retryInMs: delayMs }, 'KV watch could not be resumed; retrying');
            await sleep(delayMs);
            delayMs = Math.min(delayMs * 2, RETRY_MAX_MS);
          }
        }
      } while (this.#resubscribeAgain && !this.#closed);
      this.#resubscribing = undefined;
    })();
    return this.#resubscribing;
  }

  async #followConnection(): Promise<void> {
    this.#statuses = this.#nc.status();
    for await (const status of this.#statuses) {
      if (this.#closed) break;
      if (status.type === 'disconnect') {
        this.#connected = false;
      } else if (status.type === 'reconnect') {
        this.#connected = true;
        void this.#resubscribe();
      }
    }
  }

  #checkCaughtUp(): void {
    if (!this.caughtUp) return;
    const waiters = this.#caughtUpWaiters.splice(0);
    for (const resolve of waiters) resolve();
  }
}
