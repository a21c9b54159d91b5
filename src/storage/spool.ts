/**
 * The on-disk spool between the gateway and InfluxDB: one lmdb entry per
 * accepted TELEMETRY message (its points, ready to write), under ordered
 * integer keys. The gateway ACKs a message once its append has committed;
 * the drainer writes entries to InfluxDB in key order and removes what
 * InfluxDB confirmed. So an InfluxDB outage delays storage, not ACKs, and a
 * hub crash loses nothing that was ACKed.
 *
 * The env (`${dataDir}/spool`) also holds the durable duplicate windows and
 * the dead letters. lmdb-js commits every write issued in one event turn in
 * one transaction, so a spool entry and its device's window slot, put
 * together, are durable together: after a crash a resend is recognised
 * exactly when its readings are in the spool (or already in InfluxDB).
 * Async `transaction()` is not used: it never resolves on our hosts.
 */
import type { IPoint } from 'influx';
import { open, type Database, type RootDatabase } from 'lmdb';
import { PulsewireError } from '../errors/catalog.js';
import { AcceptedWindowStore } from './accepted-window-store.js';
import { DeadLetters } from './dead-letters.js';
import { silentLogger, type StorageLogger } from './logger.js';

export type SpoolEntry = {
  readonly key: number;
  readonly deviceId: string;
  readonly points: IPoint[];
  /** When it was spooled (ms since the epoch). */
  readonly at: number;
  /** Its size on disk (value bytes), what the bound counts. */
  readonly bytes: number;
};

export type SpoolStats = {
  readonly entries: number;
  readonly points: number;
  readonly bytes: number;
  readonly maxBytes: number;
  readonly full: boolean;
  /** Seconds since the oldest entry still spooled was appended; 0 when empty. */
  readonly oldestAgeSeconds: number;
};

export type SpoolOptions = {
  maxBytes: number;
  /** How many accepted (seq, fingerprint) pairs to keep per device. */
  windowSize: number;
  logger?: StorageLogger;
  now?: () => number;
};

/** Once full, appends stay refused until the spool drains below this share of the bound (no flapping). */
const LOW_WATER = 0.9;

type Stored = { d: string; p: IPoint[]; at: number };

export class Spool {
  readonly accepted: AcceptedWindowStore;
  readonly deadLetters: DeadLetters;
  readonly #root: RootDatabase;
  readonly #entries: Database<string, number>;
  readonly #maxBytes: number;
  readonly #log: StorageLogger;
  readonly #now: () => number;
  readonly #committedListeners = new Set<() => void>();
  readonly #removedListeners = new Set<() => void>();
  #nextKey: number;
  #count = 0;
  #points = 0;
  #bytes = 0;
  #full = false;
  #closed = false;

  private constructor(root: RootDatabase, options: SpoolOptions) {
    this.#root = root;
    // The values are UTF-8 JSON. As 'string' lmdb encodes and decodes them in place; as 'binary' (before)
    // each append also made a Buffer of the text and each read a string of the Buffer (8% of the hub's
    // CPU at full ingest). The bytes on disk are the same, so a spool written before reads as is.
    this.#entries = root.openDB<string, number>({ name: 'entries', encoding: 'string' });
    this.accepted = new AcceptedWindowStore(root.openDB({ name: 'accepted' }), options.windowSize);
    this.deadLetters = new DeadLetters(root.openDB({ name: 'dead-letters' }), options.now);
    this.#maxBytes = options.maxBytes;
    this.#log = options.logger ?? silentLogger;
    this.#now = options.now ?? Date.now;
    let last = 0;
    // One scan at start: the counters a restart needs (a 1 GiB spool is a few hundred ms).
    for (const { key, value } of this.#entries.getRange({})) {
      this.#count++;
      this.#bytes += Buffer.byteLength(value, 'utf8');
      this.#points += (JSON.parse(value) as Stored).p.length;
      last = key;
    }
    this.#nextKey = last + 1;
  }

  static open(dir: string, options: SpoolOptions): Spool {
    return new Spool(open({ path: dir }), options);
  }

  /**
   * Appends one message's points (and, for an acknowledged message, its seq
   * and fingerprint into the device's durable window, in the same commit).
   * Resolves once committed; rejects with PW_ERR_SPOOL_FULL when over the bound.
   */
  append(deviceId: string, points: IPoint[], mark?: { seq: number; fingerprint: number }): Promise<void> {
    if (this.#closed) return Promise.reject(new PulsewireError('PW_ERR_STORAGE_UNAVAILABLE', 'spool is closed'));
    // JSON keeps every number, string and boolean exactly, and its size is what we count.
    const value = JSON.stringify({ d: deviceId, p: points, at: this.#now() } satisfies Stored);
    const bytes = Buffer.byteLength(value, 'utf8');
    if (!this.#hasRoomFor(bytes)) {
      return Promise.reject(new PulsewireError('PW_ERR_SPOOL_FULL', `${this.#bytes} of ${this.#maxBytes} bytes used`));
    }
    const key = this.#nextKey++;
    this.#count++;
    this.#points += points.length;
    this.#bytes += bytes;
    // Both puts in this event turn: one lmdb transaction.
    const writes = [this.#entries.put(key, value)];
    if (mark) writes.push(this.accepted.record(deviceId, mark.seq, mark.fingerprint));
    return Promise.all(writes).then(
      () => this.#committedListeners.forEach((listener) => listener()),
      (err: unknown) => {
        this.#forget(points.length, bytes);
        throw new PulsewireError('PW_ERR_STORAGE_UNAVAILABLE', `spool write failed: ${(err as Error).message}`, { cause: err });
      },
    );
  }

  /** The oldest committed entries, in order, up to about maxPoints points (at least one entry). */
  peek(maxPoints: number): SpoolEntry[] {
    const out: SpoolEntry[] = [];
    let points = 0;
    for (const { key, value } of this.#entries.getRange({})) {
      const stored = JSON.parse(value) as Stored;
      if (out.length > 0 && points + stored.p.length > maxPoints) break;
      out.push({ key, deviceId: stored.d, points: stored.p, at: stored.at, bytes: Buffer.byteLength(value, 'utf8') });
      points += stored.p.length;
    }
    return out;
  }

  /** Removes entries InfluxDB confirmed; resolves once the removal committed. */
  async remove(entries: readonly SpoolEntry[]): Promise<void> {
    await Promise.all(entries.map((entry) => this.#removeOne(entry)));
    this.#removedListeners.forEach((listener) => listener());
  }

  /** Moves the points InfluxDB refused to the dead letters and drops the entry, in one commit. */
  async deadLetter(entry: SpoolEntry, rejected: IPoint[], reason: string): Promise<void> {
    await Promise.all([this.deadLetters.add(entry.deviceId, rejected, reason), this.#removeOne(entry)]);
    this.#removedListeners.forEach((listener) => listener());
  }

  /** Called after each committed append (the drainer's wake-up). */
  onCommitted(listener: () => void): () => void {
    this.#committedListeners.add(listener);
    return () => this.#committedListeners.delete(listener);
  }

  /** Called after entries left the spool (the backlog pacer's wake-up). */
  onRemoved(listener: () => void): () => void {
    this.#removedListeners.add(listener);
    return () => this.#removedListeners.delete(listener);
  }

  /** Points waiting, without the disk read that `stats` does for the oldest entry's age. */
  get backlogPoints(): number {
    return this.#points;
  }

  get full(): boolean {
    return this.#full;
  }

  get stats(): SpoolStats {
    let oldestAgeSeconds = 0;
    if (this.#count > 0 && !this.#closed) {
      for (const { value } of this.#entries.getRange({ limit: 1 })) {
        const { at } = JSON.parse(value) as Stored;
        oldestAgeSeconds = Math.max(0, (this.#now() - at) / 1000);
      }
    }
    return { entries: this.#count, points: this.#points, bytes: this.#bytes, maxBytes: this.#maxBytes, full: this.#full, oldestAgeSeconds };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#root.close();
  }

  #hasRoomFor(bytes: number): boolean {
    if (this.#full) {
      if (this.#bytes + bytes > this.#maxBytes * LOW_WATER) return false;
      this.#setFull(false);
    }
    if (this.#bytes + bytes <= this.#maxBytes) return true;
    this.#setFull(true);
    return false;
  }

  /** Logged once per change of state, not per refused message. */
  #setFull(full: boolean): void {
    this.#full = full;
    const state = { bytes: this.#bytes, maxBytes: this.#maxBytes, entries: this.#count };
    if (full) this.#log.error(state, 'spool full: answering TELEMETRY with ACK 4 until it drains (is InfluxDB down?)');
    else this.#log.info(state, 'spool has room again: accepting TELEMETRY');
  }

  async #removeOne(entry: SpoolEntry): Promise<void> {
    await this.#entries.remove(entry.key);
    this.#forget(entry.points.length, entry.bytes);
    if (this.#full && this.#bytes <= this.#maxBytes * LOW_WATER) this.#setFull(false);
  }

  #forget(points: number, bytes: number): void {
    this.#count--;
    this.#points -= points;
    this.#bytes -= bytes;
  }
}
