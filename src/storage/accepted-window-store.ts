/**
 * The durable copy of each device's accepted-seq window (see
 * gateway/accepted-seqs.ts), so a resend after a hub restart or crash is
 * still answered ACK 1 and not stored twice.
 *
 * Two parts. The log: one record per spool commit (`log`, put by the spool in
 * the same event turn as its record, so one lmdb transaction holds both)
 * listing the (device, seq, fingerprint) of every acknowledged message in it.
 * The windows: one record per device, its newest `windowSize` pairs. Every
 * second or so the committed log records are folded into the windows (one
 * read and one put per device that sent, however many messages it sent) and
 * removed, window puts and log removal again in one transaction. Until then
 * the marks are also kept in memory, so `load` sees them.
 *
 * Before, each message put its own window slot: a put per message (its key
 * string, msgpack value, promise and lmdb write instruction) was a tenth of
 * the hub's CPU at full ingest, for a record nobody reads unless the device
 * is seen again after a restart. Now a commit of fifty messages costs one put.
 *
 * Crash: a log record is durable exactly when its spool record is, and a
 * window only loses its log records in the transaction that folded them in,
 * so after a restart (the log is folded into memory at open) a resend of an
 * acknowledged message is recognised as before. A crash between a fold's
 * window puts and its log removal (a fold of many devices spans turns) folds
 * those marks again at the next open: a window then holds a pair twice,
 * which only shortens it by one.
 *
 * The format before (database `accepted`, a record per slot: `${id}/${n mod
 * size}` -> [seq, fingerprint, n]) is read at open, like the log, and that
 * database is emptied in the transaction of the first fold.
 */
import type { Database, RootDatabase } from 'lmdb';

export type Pair = [seq: number, fingerprint: number];

/** Marks of one commit: device ids, and their (seq, fingerprint) pairs flat, two numbers per device id. */
export type Marks = { readonly devices: readonly string[]; readonly pairs: readonly number[] };

export type FoldOptions = {
  /** Fold at least this often (ms) while marks wait. */
  foldMs?: number;
  /** Fold at once when this many marks wait (bounds the memory they take). */
  foldMarks?: number;
  /** Devices folded per event turn (a fold of a large fleet is spread over turns, not one stall). */
  foldChunk?: number;
};

const FOLD_MS = 1000;
const FOLD_MARKS = 50_000;
const FOLD_CHUNK = 500;

type LegacySlot = [seq: number, fingerprint: number, n: number];

export class AcceptedWindowStore {
  readonly #log: Database<string, number>;
  readonly #windows: Database<Buffer, string>;
  readonly #legacy: Database<LegacySlot, string>;
  readonly #size: number;
  readonly #foldMs: number;
  readonly #foldMarks: number;
  readonly #foldChunk: number;
  /** Committed marks not folded yet, per device, pairs flat; and the log keys they came from. */
  #unfolded = new Map<string, number[]>();
  #unfoldedKeys: number[] = [];
  #unfoldedCount = 0;
  /** The marks of the fold in flight: on disk once it is reported, maybe readable before. */
  #folding = new Map<string, number[]>();
  #foldInFlight: Promise<void> | undefined;
  /** The legacy database still holds slots; emptied with the first fold. */
  #legacyToClear: boolean;
  #nextKey: number;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(root: RootDatabase, windowSize: number, options: FoldOptions = {}) {
    this.#log = root.openDB<string, number>({ name: 'accepted-log', encoding: 'string' });
    this.#windows = root.openDB<Buffer, string>({ name: 'accepted-windows', encoding: 'binary' });
    this.#legacy = root.openDB<LegacySlot, string>({ name: 'accepted' });
    this.#size = windowSize;
    this.#foldMs = options.foldMs ?? FOLD_MS;
    this.#foldMarks = options.foldMarks ?? FOLD_MARKS;
    this.#foldChunk = options.foldChunk ?? FOLD_CHUNK;
    this.#legacyToClear = this.#readLegacy();
    let last = 0;
    for (const { key, value } of this.#log.getRange({})) {
      this.#add(key, parseLog(value));
      last = key;
    }
    this.#nextKey = last + 1;
    if (this.#unfoldedCount > 0 || this.#legacyToClear) this.#schedule();
  }

  /** The device's window, oldest first, as AcceptedSeqs.add wants it replayed. */
  load(deviceId: string): Pair[] {
    const out = this.#stored(deviceId);
    const folding = this.#folding.get(deviceId);
    // A fold's commit is readable before lmdb reports it: then the window on disk already ends with its marks.
    if (folding !== undefined && !endsWith(out, folding)) appendPairs(out, folding);
    appendPairs(out, this.#unfolded.get(deviceId));
    return this.#newest(out);
  }

  /**
   * Issues the put of one commit's marks; the caller puts its spool record in
   * the same event turn so both commit together, and calls `committed` with
   * the key once lmdb reported the commit.
   */
  log(marks: Marks): { key: number; written: Promise<boolean> } {
    const key = this.#nextKey++;
    let text = '';
    for (let i = 0; i < marks.devices.length; i++) text += `${marks.devices[i]}\t${marks.pairs[2 * i]}\t${marks.pairs[2 * i + 1]}\n`;
    return { key, written: this.#log.put(key, text) };
  }

  /** The log record `key` (with these marks) is committed: its marks count for `load` and wait for the next fold. */
  committed(key: number, marks: Marks): void {
    this.#add(key, marks);
    if (this.#unfoldedCount >= this.#foldMarks) void this.#fold();
    else this.#schedule();
  }

  /** Stops folding; waits for a fold in flight (what is left is folded at the next open). */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#foldInFlight;
  }

  #add(key: number, marks: Marks): void {
    for (let i = 0; i < marks.devices.length; i++) {
      const device = marks.devices[i]!;
      let pairs = this.#unfolded.get(device);
      if (pairs === undefined) this.#unfolded.set(device, (pairs = []));
      pairs.push(marks.pairs[2 * i]!, marks.pairs[2 * i + 1]!);
    }
    this.#unfoldedKeys.push(key);
    this.#unfoldedCount += marks.devices.length;
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#fold();
    }, this.#foldMs);
    this.#timer.unref();
  }

  /** One fold at a time: a fold reads the windows the previous one wrote, which are readable once it is reported. */
  #fold(): Promise<void> {
    if (this.#foldInFlight !== undefined || this.#closed) return this.#foldInFlight ?? Promise.resolve();
    if (this.#unfoldedKeys.length === 0 && !this.#legacyToClear) return Promise.resolve();
    const folding = this.#unfolded;
    const keys = this.#unfoldedKeys;
    this.#folding = folding;
    this.#unfolded = new Map();
    this.#unfoldedKeys = [];
    this.#unfoldedCount = 0;
    const done = this.#write(folding, keys).then(
      () => undefined,
      () => {
        // Not folded: the log records stay on disk and the marks go back to wait for the next fold.
        for (const [device, pairs] of this.#unfolded) appendTo(folding, device, pairs);
        this.#unfolded = folding;
        this.#unfoldedKeys = keys.concat(this.#unfoldedKeys);
        for (const pairs of folding.values()) this.#unfoldedCount += pairs.length / 2;
      },
    ).finally(() => {
      this.#folding = new Map();
      this.#foldInFlight = undefined;
      if (this.#unfoldedCount >= this.#foldMarks) void this.#fold();
      else if (this.#unfoldedKeys.length > 0) this.#schedule();
    });
    this.#foldInFlight = done;
    return done;
  }

  /**
   * Writes the windows a chunk of devices per event turn (each turn's puts one
   * transaction, committed in order); the log records and the legacy slots go
   * in the last turn, so they are gone only once every window is written.
   */
  async #write(folding: Map<string, number[]>, keys: number[]): Promise<void> {
    const writes: Promise<unknown>[] = [];
    let inTurn = 0;
    for (const [device, pairs] of folding) {
      if (inTurn === this.#foldChunk) {
        inTurn = 0;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      inTurn++;
      // The previous fold was reported, so what is on disk is all of it.
      writes.push(this.#windows.put(device, foldedWindow(this.#windows.getBinaryFast(device), pairs, this.#size)));
    }
    for (const key of keys) writes.push(this.#log.remove(key));
    if (this.#legacyToClear) writes.push(this.#legacy.clearAsync().then(() => (this.#legacyToClear = false)));
    await Promise.all(writes);
  }

  #stored(deviceId: string): Pair[] {
    const out: Pair[] = [];
    const stored = this.#windows.get(deviceId);
    if (stored !== undefined) for (let i = 0; i + 8 <= stored.length; i += 8) out.push([stored.readUInt32LE(i), stored.readInt32LE(i + 4)]);
    return out;
  }

  #newest(window: Pair[]): Pair[] {
    return window.length > this.#size ? window.slice(window.length - this.#size) : window;
  }

  /** Slots of the format before, oldest first per device, as if they had just been logged; true when there were any. */
  #readLegacy(): boolean {
    const byDevice = new Map<string, LegacySlot[]>();
    for (const { key, value } of this.#legacy.getRange({})) {
      const device = key.slice(0, key.lastIndexOf('/'));
      let slots = byDevice.get(device);
      if (slots === undefined) byDevice.set(device, (slots = []));
      slots.push(value);
    }
    for (const [device, slots] of byDevice) {
      slots.sort((a, b) => a[2] - b[2]);
      appendTo(this.#unfolded, device, slots.flatMap(([seq, fingerprint]) => [seq, fingerprint]));
      this.#unfoldedCount += slots.length;
    }
    return byDevice.size > 0;
  }
}

/** A log record's text: one `deviceId\tseq\tfingerprint` line per mark (device ids hold no tab or newline). */
function parseLog(text: string): Marks {
  const devices: string[] = [];
  const pairs: number[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const [device, seq, fingerprint] = line.split('\t');
    devices.push(device!);
    pairs.push(Number(seq), Number(fingerprint));
  }
  return { devices, pairs };
}

function appendPairs(out: Pair[], pairs: readonly number[] | undefined): void {
  if (pairs === undefined) return;
  for (let i = 0; i < pairs.length; i += 2) out.push([pairs[i]!, pairs[i + 1]!]);
}

/** Whether the window's newest pair is the last of `pairs` (a seq and fingerprint are accepted once). */
function endsWith(window: readonly Pair[], pairs: readonly number[]): boolean {
  const last = window[window.length - 1];
  return last !== undefined && last[0] === pairs[pairs.length - 2] && last[1] === pairs[pairs.length - 1];
}

function appendTo(map: Map<string, number[]>, device: string, pairs: readonly number[]): void {
  const current = map.get(device);
  if (current === undefined) map.set(device, [...pairs]);
  else current.push(...pairs);
}

/**
 * A window is stored as (uint32 seq, int32 fingerprint) pairs, little-endian,
 * oldest first. This is a stored window with `pairs` (flat) appended, cut to its newest `size`
 * pairs, as bytes from bytes: a fold rewrites every window that took marks,
 * a thousand a second under load, and making each a list of pair arrays on
 * the way was most of what a fold allocated.
 */
export function foldedWindow(stored: Uint8Array | undefined, pairs: readonly number[], size: number): Buffer {
  const storedCount = stored === undefined ? 0 : Math.floor(stored.length / 8);
  const newCount = pairs.length / 2;
  const total = Math.min(size, storedCount + newCount);
  const keptStored = Math.max(0, total - newCount);
  const out = Buffer.allocUnsafe(total * 8);
  if (keptStored > 0) out.set(stored!.subarray((storedCount - keptStored) * 8, storedCount * 8), 0);
  let pos = keptStored * 8;
  for (let i = 2 * (newCount - (total - keptStored)); i < pairs.length; i += 2) {
    out.writeUInt32LE(pairs[i]!, pos);
    out.writeInt32LE(pairs[i + 1]!, pos + 4);
    pos += 8;
  }
  return out;
}
