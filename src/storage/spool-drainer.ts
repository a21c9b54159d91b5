/**
 * Moves the spool into InfluxDB: reads the oldest entries in batches (rounds,
 * two in flight so that InfluxDB always has the next request waiting), writes
 * them through the PointWriter (one write() per entry, so the writer
 * group-commits them into few requests and, on a 400, isolates each entry),
 * and removes what InfluxDB confirmed.
 *
 * - Unavailable (network, 5xx, or the writer's own retry window ran out):
 *   nothing is removed; back off exponentially with full jitter and try
 *   again, for as long as the hub runs. The entries stay in order.
 * - Rejected (400): the entry's points are rewritten one by one to find the
 *   offending ones (rewriting stored points is harmless: same series, tags
 *   and time overwrite with the same values); those go to the dead letters
 *   with InfluxDB's reason, the entry leaves the spool, the stream goes on.
 *
 * A crash between InfluxDB's confirmation and the removal's commit makes the
 * next start write those entries again: identical points, which InfluxDB
 * stores once. That is what makes "every ACKed reading exactly once" hold.
 */
import type { IPoint } from 'influx';
import { isPulsewireError } from '../errors/catalog.js';
import { parseLine, parseLines, splitLines } from './line-protocol.js';
import { silentLogger, type StorageLogger } from './logger.js';
import type { Spool, SpoolEntry } from './spool.js';
import type { LineGroup } from './writer.js';

/**
 * What the drainer writes through (PointWriter): every group (a spooled
 * entry's line protocol, as stored) settles on its own; the result holds
 * undefined for each group stored and the error of each other one, in order.
 */
export interface EntryWriter {
  writeEach(groups: readonly LineGroup[]): Promise<(Error | undefined)[]>;
}

/** An EntryWriter from a write of one group's points (tests, adapters): each group parsed and written on its own, all at once. */
export function writeEachOf(write: (points: IPoint[]) => Promise<void>): EntryWriter {
  return {
    async writeEach(groups) {
      const results = await Promise.allSettled(groups.map((group) => write(parseLines(group.lines))));
      return results.map((result) => (result.status === 'fulfilled' ? undefined : (result.reason as Error)));
    },
  };
}

export type DrainerOptions = {
  /** Points read per round; the writer's batch times its concurrency keeps every write slot busy (app.ts). */
  batchPoints: number;
  backoffBaseMs?: number;
  backoffCapMs?: number;
  logger?: StorageLogger;
};

export type DrainerStats = {
  /** Rounds that found InfluxDB unavailable and backed off. */
  readonly retries: number;
  readonly drainedPoints: number;
  readonly deadLetterPoints: number;
  /** True while the last round failed for lack of InfluxDB. */
  readonly backingOff: boolean;
};

type Round = 'ok' | 'unavailable';

/** Rounds (reads of the spool handed to the writer) in flight at once. */
const MAX_ROUNDS_IN_FLIGHT = 2;

/** A record holds far fewer than 2^16 entries (spool.ts cuts records at 2,000 points), so this number is unique and exact. */
const inFlightKey = (record: number, index: number): number => record * 65_536 + index;

const sleep = (ms: number, signal: { wake?: () => void }): Promise<void> =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.wake = () => { clearTimeout(timer); resolve(); };
  });

export class SpoolDrainer {
  readonly #spool: Spool;
  readonly #writer: EntryWriter;
  readonly #batchPoints: number;
  readonly #baseMs: number;
  readonly #capMs: number;
  readonly #log: StorageLogger;
  readonly #signal: { wake?: () => void } = {};
  #loop: Promise<void> | undefined;
  #draining = false; // stop requested: finish what is spooled, then end
  #stopped = false; // stop bound reached: end now, leave the rest spooled
  #retries = 0;
  #drainedPoints = 0;
  #deadLetterPoints = 0;
  #backingOff = false;
  #unsubscribe: (() => void) | undefined;

  constructor(spool: Spool, writer: EntryWriter, options: DrainerOptions) {
    this.#spool = spool;
    this.#writer = writer;
    this.#batchPoints = options.batchPoints;
    this.#baseMs = options.backoffBaseMs ?? 200;
    this.#capMs = options.backoffCapMs ?? 5000;
    this.#log = options.logger ?? silentLogger;
  }

  /** The most points handed to the writer and not yet confirmed: they stay in the spool's backlog until then. */
  get maxPointsInFlight(): number {
    return MAX_ROUNDS_IN_FLIGHT * this.#batchPoints;
  }

  get stats(): DrainerStats {
    return { retries: this.#retries, drainedPoints: this.#drainedPoints, deadLetterPoints: this.#deadLetterPoints, backingOff: this.#backingOff };
  }

  start(): void {
    if (this.#loop) return;
    this.#unsubscribe = this.#spool.onCommitted(() => this.#signal.wake?.());
    this.#loop = this.#run();
  }

  /**
   * Shutdown: keeps draining until the spool is empty, InfluxDB is found
   * unavailable, or `boundMs` passes; whatever is left stays spooled for the
   * next start. Resolves without waiting for a write still in flight.
   */
  async stop(boundMs: number): Promise<void> {
    this.#unsubscribe?.();
    if (!this.#loop) return;
    this.#draining = true;
    this.#signal.wake?.();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.#loop, new Promise<void>((resolve) => { timer = setTimeout(resolve, boundMs); })]);
    clearTimeout(timer);
    this.#stopped = true;
    this.#signal.wake?.();
  }

  async #run(): Promise<void> {
    let attempt = 0;
    const rounds = new Set<Promise<Round>>();
    while (!this.#stopped) {
      // Keep up to two rounds in flight: the next one is read and serialised while
      // InfluxDB works on the last, instead of the writer's slots idling between rounds.
      const batch = rounds.size < MAX_ROUNDS_IN_FLIGHT ? this.#spool.peek(this.#batchPoints, this.#isInFlight) : [];
      if (batch.length > 0) {
        const round = this.#startRound(batch).finally(() => rounds.delete(round));
        rounds.add(round);
        continue;
      }
      if (rounds.size === 0) {
        if (this.#draining) return;
        await sleep(1000, this.#signal); // woken by the next append; the timer is a safety net
        continue;
      }
      if ((await Promise.race(rounds)) === 'ok') {
        if (this.#backingOff) this.#log.info({ retries: attempt }, 'InfluxDB reachable again; draining the spool');
        this.#backingOff = false;
        attempt = 0;
        continue;
      }
      // Unavailable: let the other round settle too, then back off and start again from the oldest entry.
      await Promise.allSettled(rounds);
      if (this.#stopped || this.#draining) return;
      if (!this.#backingOff) this.#log.warn({ spooled: this.#spool.stats.entries }, 'InfluxDB unavailable; readings stay in the spool, retrying with backoff');
      this.#backingOff = true;
      this.#retries++;
      const delay = Math.random() * Math.min(this.#capMs, this.#baseMs * 2 ** Math.min(attempt++, 20));
      await sleep(delay, this.#signal);
    }
  }

  /** Entries handed to a round and not settled, as one number each (see inFlightKey). */
  readonly #inFlight = new Set<number>();
  readonly #isInFlight = (record: number, index: number): boolean => this.#inFlight.has(inFlightKey(record, index));

  async #startRound(batch: SpoolEntry[]): Promise<Round> {
    const keys = batch.map((entry) => inFlightKey(entry.record, entry.index));
    for (const key of keys) this.#inFlight.add(key);
    try {
      return await this.#deliver(batch);
    } catch (err) {
      // A spool error (disk) must not end the loop: log, back off, try again.
      this.#log.error({ err }, 'spool drain failed');
      return 'unavailable';
    } finally {
      for (const key of keys) this.#inFlight.delete(key);
    }
  }

  async #deliver(batch: SpoolEntry[]): Promise<Round> {
    // One group per entry (an entry is one) in one call: the writer group-commits them and isolates a 400 per entry.
    const errors = await this.#writer.writeEach(batch);
    if (this.#stopped) return 'ok';
    const confirmed: SpoolEntry[] = [];
    const rejected: [SpoolEntry, string][] = [];
    let unavailable = false;
    for (let i = 0; i < batch.length; i++) {
      const error = errors[i];
      if (error === undefined) confirmed.push(batch[i]!);
      else if (isPulsewireError(error, 'PW_ERR_STORAGE_REJECTED')) rejected.push([batch[i]!, error.detail ?? error.message]);
      else unavailable = true;
    }
    // Counted as the spool counts them off (remove() does that at once, before its commit), so the drainer's
    // drainedPoints and the spool's entries never disagree: a reader that saw the spool empty saw every point counted.
    const removed = this.#spool.remove(confirmed);
    for (const entry of confirmed) this.#drainedPoints += entry.count;
    await removed;
    for (const [entry, reason] of rejected) {
      if ((await this.#isolate(entry, reason)) === 'unavailable') unavailable = true;
    }
    return unavailable ? 'unavailable' : 'ok';
  }

  /** Finds the points of a refused entry that InfluxDB refuses on their own, and dead-letters them. */
  async #isolate(entry: SpoolEntry, entryReason: string): Promise<Round> {
    if (entry.count === 1) return this.#settleRejected(entry, entry.points, entryReason);
    const lines = splitLines(entry.lines);
    const errors = await this.#writer.writeEach(lines.map((line) => ({ lines: line, count: 1 })));
    if (this.#stopped) return 'ok';
    const bad: IPoint[] = [];
    let reason = '';
    for (const [i, error] of errors.entries()) {
      if (error === undefined) continue;
      if (!isPulsewireError(error, 'PW_ERR_STORAGE_REJECTED')) return 'unavailable';
      bad.push(parseLine(lines[i]!));
      reason ||= error.detail ?? error.message;
    }
    return this.#settleRejected(entry, bad, reason || entryReason);
  }

  async #settleRejected(entry: SpoolEntry, bad: IPoint[], reason: string): Promise<Round> {
    // Every point alone was fine (say, a 413 for the whole entry): stored now, nothing to set aside.
    const settled = bad.length === 0 ? this.#spool.remove([entry]) : this.#spool.deadLetter(entry, bad, reason);
    // Counted as the spool counts the entry off, as in #deliver.
    this.#deadLetterPoints += bad.length;
    this.#drainedPoints += entry.count - bad.length;
    await settled;
    if (bad.length > 0) this.#log.warn({ deviceId: entry.deviceId, points: bad.length, reason }, 'InfluxDB refused points; moved to dead letters');
    return 'ok';
  }
}
