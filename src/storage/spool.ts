/**
 * The on-disk spool between the gateway and InfluxDB. Its unit is the entry:
 * one accepted TELEMETRY message (its points, ready to write). The gateway
 * ACKs a message once its append has committed; the drainer writes entries to
 * InfluxDB in order and removes what InfluxDB confirmed. So an InfluxDB
 * outage delays storage, not ACKs, and a hub crash loses nothing that was
 * ACKed.
 *
 * Group commit: the entries appended in one event turn (every socket read of
 * one poll phase) go to disk as one lmdb record under an ordered integer key,
 * not one record each. A put per message cost more than the message's own
 * work (waking lmdb's write thread, a Buffer per value; a fifth of the hub's
 * CPU at full ingest), and the ACKs wait for the commit either way. A record
 * leaves the disk once all its entries were removed; until then the entries
 * already removed are remembered in memory (after a crash they are written to
 * InfluxDB again: identical points, which InfluxDB stores once).
 *
 * The env (`${dataDir}/spool`) also holds the durable duplicate windows, each
 * device's series names (device-names-store.ts) and the dead letters. lmdb-js commits every write issued in one event turn in
 * one transaction, so a record and the duplicate-window log record of its
 * messages (accepted-window-store.ts), put together, are durable together: after a crash a resend is recognised
 * exactly when its readings are in the spool (or already in InfluxDB).
 * Async `transaction()` is not used: it never resolves on our hosts.
 */
import type { IPoint } from 'influx';
import { asBinary, open, type Database, type RootDatabase } from 'lmdb';
import { PulsewireError } from '../errors/catalog.js';
import { AcceptedWindowStore, type FoldOptions } from './accepted-window-store.js';
import { DeadLetters } from './dead-letters.js';
import { DeviceNamesStore } from './device-names-store.js';
import { parseLines, pointsLines } from './line-protocol.js';
import { silentLogger, type StorageLogger } from './logger.js';
import { decodeRecord, encodeRecord, messageBytes, recordAt, recordHead, type StoredMessage } from './spool-record.js';

/** One spooled message: its points as InfluxDB line protocol, ready to write. */
export class SpoolEntry {
  constructor(
    /** The lmdb record that holds it, and its place in that record. */
    readonly record: number,
    readonly index: number,
    readonly deviceId: string,
    /** Its points as line protocol, one line each, joined by newlines. */
    readonly lines: string,
    /** How many points (lines) it holds. */
    readonly count: number,
    /** When it was spooled (ms since the epoch). */
    readonly at: number,
  ) {}

  /** Its points as objects, parsed when asked (dead letters, tests): the drain path never asks. */
  get points(): IPoint[] {
    return parseLines(this.lines);
  }
}

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
  /** Most dead letters kept (PULSEWIRE_DEAD_LETTERS_MAX); past it the oldest go. */
  deadLettersMax?: number;
  logger?: StorageLogger;
  now?: () => number;
  /**
   * What an append waits for (PULSEWIRE_SPOOL_SYNC): `commit` (default) the
   * lmdb commit, which a crash of the process cannot undo (the OS has the
   * pages); `flush` also lmdb's fsync of that commit (overlappingSync makes
   * it a separate step), which a power loss cannot undo either.
   */
  sync?: 'commit' | 'flush';
  /** The flush an append waits for with `flush` (default: lmdb's `flushed` of the env); a seam for tests. */
  flushed?: () => PromiseLike<unknown>;
  /** How often the duplicate windows' log is folded (accepted-window-store.ts); tests shorten it. */
  fold?: FoldOptions;
  /** Points of just-committed records kept for the drainer (default MAX_CACHED_POINTS). */
  cachedPoints?: number;
  /**
   * Told how long each record's commit took, from the put until lmdb's
   * callback ran (its write thread, the disk's sync, and the wait for this
   * event loop): what every ACK of the record waited for the spool (metric
   * pulsewire_spool_commit_seconds).
   */
  onCommitTimed?: (ms: number) => void;
};

/** Once full, appends stay refused until the spool drains below this share of the bound (no flapping). */
const LOW_WATER = 0.9;

/** A record read from disk, kept while some of its entries are still spooled. */
type OpenRecord = { at: number; messages: StoredMessage[]; removed: boolean[]; left: number; bytes: number };

/** The appends of the current event turn, committed together. */
type PendingRecord = {
  /** When the record started (ms since the epoch), and its text up to the first message (spool-record.ts). */
  at: number;
  head: string;
  /** Its messages: encoded at the commit (spool-record.ts encodeRecord), kept as they are for the drainer. */
  messages: StoredMessage[];
  /** Acknowledged messages' device ids, and their (seq, fingerprint) flat: one put for the whole record (accepted-window-store.ts). */
  marks: { devices: string[]; pairs: number[] };
  /** Series names new to their device, recorded in the same commit as the readings that brought them. */
  names: { deviceId: string; names: readonly string[] }[];
  points: number;
  /** What the record was counted as so far (see append). */
  bytes: number;
  committed: Promise<void>;
  settle: (err?: unknown) => void;
  /** Its turn has ended while another record's commit was in flight: committed when that one is reported. */
  due: boolean;
};

/** A record is cut at this many points even within one turn: it bounds what one refused write re-sends point by point. */
const MAX_RECORD_POINTS = 2000;

/**
 * Committed records stay in memory as objects while the records held so
 * have fewer points than this, so in the usual case (InfluxDB keeping up)
 * the drainer never cuts the text apart again (parsing JSON back was 7% of the hub's CPU at full
 * ingest). A backlog beyond it (an outage) is read from disk as before.
 * About 30 MB of point objects at most.
 */
export const MAX_CACHED_POINTS = 100_000;

export class Spool {
  readonly accepted: AcceptedWindowStore;
  readonly names: DeviceNamesStore;
  /** What an append waits for (SpoolOptions.sync). */
  readonly sync: 'commit' | 'flush';
  readonly deadLetters: DeadLetters;

  /** A device's durable duplicate window, oldest first (the gateway restores it when it first sees the device). */
  acceptedWindow(deviceId: string): [seq: number, fingerprint: number][] {
    return this.accepted.load(deviceId);
  }

  /** Dead letters, newest first (GET /v1/dead-letters). */
  deadLetterPage(limit: number, before?: number): ReturnType<DeadLetters['page']> {
    return this.deadLetters.page(limit, before);
  }

  get deadLetterCount(): number {
    return this.deadLetters.count;
  }
  readonly #root: RootDatabase;
  readonly #entries: Database<string, number>;
  readonly #maxBytes: number;
  readonly #cachedPoints: number;
  readonly #log: StorageLogger;
  readonly #now: () => number;
  readonly #onCommitTimed: ((ms: number) => void) | undefined;
  /** Set with PULSEWIRE_SPOOL_SYNC=flush: an append also waits for this. */
  readonly #flushed: (() => PromiseLike<unknown>) | undefined;
  readonly #committedListeners = new Set<() => void>();
  readonly #removedListeners = new Set<() => void>();
  /** Records held as objects (peeked, or committed by this process while few), until fully removed; by key. */
  readonly #open = new Map<number, OpenRecord>();
  /** Points in the records of #open that are still spooled. */
  #openPoints = 0;
  /** Keys of records put but whose commit lmdb has not reported yet (see peek). */
  readonly #committing = new Set<number>();
  #pending: PendingRecord | undefined;
  #nextKey: number;
  #count = 0;
  #points = 0;
  #bytes = 0;
  #full = false;
  #closed = false;

  private constructor(root: RootDatabase, options: SpoolOptions) {
    this.#root = root;
    // The values are UTF-8 text (spool-record.ts). As 'string' lmdb encodes and decodes them in place; as 'binary' (before)
    // each append also made a Buffer of the text and each read a string of the Buffer (8% of the hub's
    // CPU at full ingest). The bytes on disk are the same, so a spool written before reads as is.
    this.#entries = root.openDB<string, number>({ name: 'entries', encoding: 'string' });
    this.accepted = new AcceptedWindowStore(root, options.windowSize, options.fold);
    this.names = new DeviceNamesStore(root.openDB({ name: 'names' }));
    this.deadLetters = new DeadLetters(root.openDB({ name: 'dead-letters' }), options.now, options.deadLettersMax);
    this.#maxBytes = options.maxBytes;
    this.#cachedPoints = options.cachedPoints ?? MAX_CACHED_POINTS;
    this.#log = options.logger ?? silentLogger;
    this.#now = options.now ?? Date.now;
    this.#onCommitTimed = options.onCommitTimed;
    this.sync = options.sync ?? 'commit';
    this.#flushed = this.sync === 'flush' ? (options.flushed ?? (() => root.flushed)) : undefined;
    let last = 0;
    // One scan at start: the counters a restart needs (a 1 GiB spool is a few hundred ms).
    for (const { key, value } of this.#entries.getRange({})) {
      this.#bytes += Buffer.byteLength(value, 'utf8');
      for (const message of decodeRecord(value).messages) {
        this.#count++;
        this.#points += message.count;
      }
      last = key;
    }
    this.#nextKey = last + 1;
  }

  static open(dir: string, options: SpoolOptions): Spool {
    return new Spool(open({ path: dir }), options);
  }

  /**
   * Appends one message's points (and, for an acknowledged message, its seq
   * and fingerprint into the device's durable window, and the series names it
   * is the first to bring, in the same commit).
   * Resolves once committed, with the other appends of this event turn;
   * rejects with PW_ERR_SPOOL_FULL when over the bound.
   */
  append(deviceId: string, points: IPoint[], mark?: { seq: number; fingerprint: number }, names?: readonly string[]): Promise<void> {
    let lines: string;
    try {
      lines = pointsLines(points);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.appendLines(deviceId, lines, points.length, mark, names);
  }

  /**
   * append() for points already in line protocol (`count` lines joined by
   * newlines, as reading-lines.ts makes them at intake): the hot path, which
   * stores the text as it came.
   */
  appendLines(deviceId: string, lines: string, count: number, mark?: { seq: number; fingerprint: number }, names?: readonly string[]): Promise<void> {
    if (this.#closed) return Promise.reject(new PulsewireError('PW_ERR_STORAGE_UNAVAILABLE', 'spool is closed'));
    const message: StoredMessage = { d: deviceId, lines, count };
    // A record's bytes: its head, counted with its first message, and each message's.
    const at = this.#pending?.at ?? this.#now();
    const head = this.#pending?.head ?? recordHead(at);
    const bytes = messageBytes(message) + (this.#pending ? 0 : head.length);
    if (!this.#hasRoomFor(bytes)) {
      return Promise.reject(new PulsewireError('PW_ERR_SPOOL_FULL', `${this.#bytes} of ${this.#maxBytes} bytes used`));
    }
    this.#count++;
    this.#points += count;
    this.#bytes += bytes;
    const pending = this.#pending ?? this.#startRecord(at, head);
    pending.messages.push(message);
    pending.points += count;
    pending.bytes += bytes;
    if (mark) {
      pending.marks.devices.push(deviceId);
      pending.marks.pairs.push(mark.seq, mark.fingerprint);
    }
    if (names !== undefined && names.length > 0) pending.names.push({ deviceId, names });
    if (pending.points >= MAX_RECORD_POINTS) this.#commit(pending);
    return pending.committed;
  }

  #startRecord(at: number, head: string): PendingRecord {
    let settle!: (err?: unknown) => void;
    const committed = new Promise<void>((resolve, reject) => {
      settle = (err) => (err === undefined ? resolve() : reject(err));
    });
    const pending: PendingRecord = { at, head, messages: [], marks: { devices: [], pairs: [] }, names: [], points: 0, bytes: 0, committed, settle, due: false };
    this.#pending = pending;
    // After this turn's socket reads: every append of the turn shares the record.
    setImmediate(() => this.#commitWhenFree(pending));
    return pending;
  }

  /**
   * One record's commit in flight at a time: the appends of the turns that
   * end meanwhile join the next record, committed once the one in flight is
   * reported. At a moderate rate a commit per turn (a put and its promise,
   * lmdb's write-thread wake-up and sync) cost more than the turn's messages;
   * this way the commits follow the disk's pace, not the sockets', and at
   * saturation (one turn per commit anyway) nothing changes.
   */
  #commitWhenFree(pending: PendingRecord): void {
    if (this.#committing.size > 0) pending.due = true;
    else this.#commit(pending);
  }

  /** A commit was reported: the record that waited for it goes now. */
  #commitDue(): void {
    const next = this.#pending;
    if (next?.due && this.#committing.size === 0) this.#commit(next);
  }

  /** Writes the record and its window slots in one event turn: one lmdb transaction. */
  #commit(pending: PendingRecord): void {
    if (this.#pending !== pending) return; // already committed (cut at MAX_RECORD_POINTS)
    this.#pending = undefined;
    const key = this.#nextKey++;
    this.#committing.add(key);
    const started = performance.now();
    let writes: Promise<unknown>;
    let logKey: number | undefined;
    try {
      // The record's UTF-8 bytes, stored as they are (asBinary) and read back as the string they spell; lmdb's
      // typing knows only the store's own value type.
      const record = asBinary(encodeRecord(pending.head, pending.messages, pending.bytes)) as unknown as string;
      const puts = [this.#entries.put(key, record)];
      if (pending.marks.devices.length > 0) {
        const logged = this.accepted.log(pending.marks);
        logKey = logged.key;
        puts.push(logged.written);
      }
      for (const { deviceId, names } of pending.names) for (const name of names) puts.push(this.names.record(deviceId, name));
      writes = Promise.all(puts);
    } catch (err) {
      writes = Promise.reject(err);
    }
    const flushed = this.#flushed;
    writes.then(
      () => {
        this.#committing.delete(key);
        if (logKey !== undefined) this.accepted.committed(logKey, pending.marks);
        this.#commitDue();
        if (this.#openPoints + pending.points <= this.#cachedPoints) this.#addOpen(key, pending.at, pending.messages, pending.bytes);
        // Committed: the drainer may take it (InfluxDB does not need our fsync); the ACKs may have to wait for it.
        this.#committedListeners.forEach((listener) => listener());
        if (flushed === undefined) return this.#settle(pending, started);
        flushed().then(
          () => this.#settle(pending, started),
          (err: unknown) => pending.settle(new PulsewireError('PW_ERR_STORAGE_UNAVAILABLE', `spool flush failed: ${(err as Error).message}`, { cause: err })),
        );
      },
      (err: unknown) => {
        this.#committing.delete(key);
        this.#commitDue();
        this.#count -= pending.messages.length;
        this.#points -= pending.points;
        this.#bytes -= pending.bytes;
        pending.settle(new PulsewireError('PW_ERR_STORAGE_UNAVAILABLE', `spool write failed: ${(err as Error).message}`, { cause: err }));
      },
    );
  }

  #settle(pending: PendingRecord, started: number): void {
    this.#onCommitTimed?.(performance.now() - started);
    pending.settle();
  }

  /**
   * The oldest committed entries, in order, up to about maxPoints points (at
   * least one entry), leaving out those `skip` names (the ones in flight).
   *
   * lmdb makes a commit readable before its promises resolve (up to ~100 ms
   * measured under CPU load). A record read from disk in that gap was opened
   * twice: the commit callback replaced the copy whose entries the drainer
   * had meanwhile delivered and removed, so they were delivered and counted
   * off again (backlogPoints went negative). So a record's entries are handed
   * out once its commit is reported, as its ACKs are; the records after it
   * wait too, to keep the order.
   */
  peek(maxPoints: number, skip?: (record: number, index: number) => boolean): SpoolEntry[] {
    const out: SpoolEntry[] = [];
    let points = 0;
    for (const key of this.#entries.getKeys({})) {
      if (this.#committing.has(key)) break;
      const record = this.#openRecord(key);
      if (record.left === 0) continue; // its removal is still being committed
      for (let index = 0; index < record.messages.length; index++) {
        if (record.removed[index] || skip?.(key, index)) continue;
        const message = record.messages[index]!;
        if (out.length > 0 && points + message.count > maxPoints) return out;
        out.push(new SpoolEntry(key, index, message.d, message.lines, message.count, record.at));
        points += message.count;
      }
    }
    return out;
  }

  /** Removes entries InfluxDB confirmed; resolves once the removal committed. */
  async remove(entries: readonly SpoolEntry[]): Promise<void> {
    await Promise.all(this.#removeEntries(entries));
    this.#removedListeners.forEach((listener) => listener());
  }

  /** Moves the points InfluxDB refused to the dead letters and drops the entry, in one commit. */
  async deadLetter(entry: SpoolEntry, rejected: IPoint[], reason: string): Promise<void> {
    await Promise.all([this.deadLetters.add(entry.deviceId, rejected, reason), ...this.#removeEntries([entry])]);
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
      for (const { key, value } of this.#entries.getRange({ limit: 1 })) {
        const at = this.#open.get(key)?.at ?? recordAt(value);
        oldestAgeSeconds = Math.max(0, (this.#now() - at) / 1000);
      }
    }
    return { entries: this.#count, points: this.#points, bytes: this.#bytes, maxBytes: this.#maxBytes, full: this.#full, oldestAgeSeconds };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const pending = this.#pending;
    if (pending) {
      this.#commit(pending);
      await pending.committed.catch(() => undefined);
    }
    await this.accepted.close();
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

  #openRecord(key: number): OpenRecord {
    let record = this.#open.get(key);
    if (!record) {
      const value = this.#entries.get(key)!;
      const stored = decodeRecord(value);
      record = this.#addOpen(key, stored.at, stored.messages, Buffer.byteLength(value, 'utf8'));
    }
    return record;
  }

  #addOpen(key: number, at: number, messages: StoredMessage[], bytes: number): OpenRecord {
    let points = 0;
    for (const message of messages) points += message.count;
    const record: OpenRecord = { at, messages, removed: new Array<boolean>(messages.length).fill(false), left: messages.length, bytes };
    this.#open.set(key, record);
    this.#openPoints += points;
    return record;
  }

  /** Forgets the entries at once; a record leaves the disk when its last entry goes. */
  #removeEntries(entries: readonly SpoolEntry[]): Promise<unknown>[] {
    const removals: Promise<unknown>[] = [];
    for (const entry of entries) {
      const record = this.#open.get(entry.record);
      if (!record || record.removed[entry.index]) continue;
      record.removed[entry.index] = true;
      record.left--;
      this.#count--;
      this.#points -= entry.count;
      this.#openPoints -= entry.count;
      if (record.left > 0) continue;
      // Kept open (all removed) until the removal commits: till then a read still finds the record on disk.
      const key = entry.record;
      removals.push(this.#entries.remove(key).finally(() => this.#open.delete(key)));
      this.#bytes -= record.bytes;
    }
    if (this.#full && this.#bytes <= this.#maxBytes * LOW_WATER) this.#setFull(false);
    return removals;
  }
}
