/**
 * Group commit of points into InfluxDB. Callers (the spool drainer, one
 * group per spooled message) await write() or writeEach(), which settle once
 * InfluxDB confirmed (or refused) the requests that carried their points. Requests are formed from whatever is queued
 * when a slot frees up, so a trickle goes out at once and a flood becomes a
 * few large requests. A group is line protocol already written (the spool
 * keeps it so); a request is its groups' text joined by newlines.
 */

import type { IPoint } from 'influx';
import { PulsewireError } from '../errors/catalog.js';
import { classifyInfluxError } from './influx-errors.js';
import type { LineWrite } from './influx-write.js';
import { pointsLines } from './line-protocol.js';
import { silentLogger, type StorageLogger } from './logger.js';
import { WriterStatsRecorder, type WriterStats } from './writer-stats.js';

export type { WriterStats } from './writer-stats.js';

/** Points as line protocol: `count` lines joined by newlines (a SpoolEntry is one). */
export type LineGroup = { readonly lines: string; readonly count: number };

/** Where requests go: InfluxConnection (influx-connection.ts) is one. */
export type LineSink = { readonly writeLines: LineWrite };

export type PointWriterOptions = {
  /** Upper bound of points per request; one caller's group is never split across requests. */
  maxBatchPoints?: number;
  maxConcurrentWrites?: number;
  /** How long a batch is retried on network errors and 5xx before its callers are told to resend later. */
  retryForMs?: number;
  logger?: StorageLogger;
};

/** One caller's points; its outcome goes to slot `index` of its call's Settlement. */
type Group = {
  group: LineGroup;
  settlement: Settlement;
  index: number;
};

/**
 * The groups of one writeEach() call: one promise for all of them, not a
 * promise and two callbacks per group (per spooled message, that was a good
 * part of the drainer's garbage in an allocation profile at full ingest).
 */
class Settlement {
  readonly errors: (PulsewireError | undefined)[];
  readonly done: Promise<(PulsewireError | undefined)[]>;
  #left: number;
  #resolve!: (errors: (PulsewireError | undefined)[]) => void;

  constructor(groups: number) {
    this.errors = new Array<PulsewireError | undefined>(groups).fill(undefined);
    this.#left = groups;
    this.done = new Promise((resolve) => { this.#resolve = resolve; });
    if (groups === 0) this.#resolve(this.errors);
  }

  settle(index: number, error: PulsewireError | undefined): void {
    this.errors[index] = error;
    if (--this.#left === 0) this.#resolve(this.errors);
  }
}

type Outcome = { ok: true } | { ok: false; error: PulsewireError };

const BACKOFF_BASE_MS = 50;
const BACKOFF_CAP_MS = 2000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The groups' lines joined by newlines, as the UTF-8 bytes of the request:
 * each group's text encoded once, straight into the buffer. Joined as a
 * string first, the request was a concatenation that the encoding flattened
 * (a copy of every line on the heap) before it copied it once more.
 */
function requestBody(batch: readonly Group[]): Buffer {
  let bytes = batch.length - 1;
  for (const { group } of batch) bytes += Buffer.byteLength(group.lines, 'utf8');
  const body = Buffer.allocUnsafe(bytes);
  let pos = 0;
  for (let i = 0; i < batch.length; i++) {
    if (i > 0) body[pos++] = 0x0a;
    pos += body.write(batch[i]!.group.lines, pos, 'utf8');
  }
  return body;
}

export class PointWriter {
  #target: LineSink;
  #maxBatchPoints: number;
  #maxConcurrent: number;
  #retryForMs: number;
  #log: StorageLogger;
  /**
   * Groups waiting for a request, from #head on. Taken by moving #head, not
   * by shift(): with one-reading messages a drain round queues 10,000 groups,
   * and shift() on an array that large moves the rest each time (3.5% of the
   * hub's busy time at full one-record ingest, CPU profile).
   */
  #queue: Group[] = [];
  #head = 0;
  #unsettled = new Set<Promise<unknown>>();
  #pumpScheduled = false;
  #closed = false;
  #stats = new WriterStatsRecorder();

  constructor(target: LineSink, options: PointWriterOptions = {}) {
    const { maxBatchPoints = 5000, maxConcurrentWrites = 2, retryForMs = 5000 } = options;
    if (!(maxBatchPoints >= 1)) throw new PulsewireError('PW_ERR_CONFIG', 'PointWriter: maxBatchPoints must be at least 1');
    if (!(maxConcurrentWrites >= 1)) throw new PulsewireError('PW_ERR_CONFIG', 'PointWriter: maxConcurrentWrites must be at least 1');
    if (!(retryForMs >= 0)) throw new PulsewireError('PW_ERR_CONFIG', 'PointWriter: retryForMs must not be negative');
    this.#target = target;
    this.#maxBatchPoints = maxBatchPoints;
    this.#maxConcurrent = maxConcurrentWrites;
    this.#retryForMs = retryForMs;
    this.#log = options.logger ?? silentLogger;
  }

  /** A snapshot; counters only grow, gauges (queuedPoints, inFlight) are current values. */
  get stats(): WriterStats {
    return this.#stats.snapshot();
  }

  /** Resolves once InfluxDB confirmed these points; rejects with PW_ERR_STORAGE_UNAVAILABLE or PW_ERR_STORAGE_REJECTED. */
  async write(points: IPoint[]): Promise<void> {
    const [error] = await this.writeEach([{ lines: pointsLines(points), count: points.length }]);
    if (error) throw error;
  }

  /**
   * Several callers' groups at once, each settled on its own (a group is
   * never split across requests, and on a 400 each group alone finds out):
   * resolves when all have settled, with undefined for each confirmed group
   * and the PW_ERR_STORAGE_UNAVAILABLE / PW_ERR_STORAGE_REJECTED error of
   * each other one, in the order given.
   */
  writeEach(groups: readonly LineGroup[]): Promise<(PulsewireError | undefined)[]> {
    const settlement = new Settlement(groups.length);
    for (let index = 0; index < groups.length; index++) {
      const group = groups[index]!;
      if (this.#closed) settlement.settle(index, new PulsewireError('PW_ERR_STORAGE_UNAVAILABLE', 'writer is closed'));
      else if (group.count === 0) settlement.settle(index, undefined);
      else {
        this.#queue.push({ group, settlement, index });
        this.#stats.queued(group.count);
      }
    }
    const { done } = settlement;
    this.#unsettled.add(done);
    void done.then(() => this.#unsettled.delete(done));
    this.#schedulePump();
    return done;
  }

  /** Resolves when every write() made before this call has settled (either way). */
  async flush(): Promise<void> {
    await Promise.all([...this.#unsettled]);
  }

  /** Refuses new writes from now on and waits for the queued ones. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.flush();
  }

  /**
   * Deferred to a microtask so that callers in the same tick (one
   * socket read with many messages) share a request, which costs no latency.
   */
  #schedulePump(): void {
    if (this.#pumpScheduled) return;
    this.#pumpScheduled = true;
    queueMicrotask(() => {
      this.#pumpScheduled = false;
      this.#pump();
    });
  }

  #pump(): void {
    while (this.#stats.inFlight < this.#maxConcurrent && this.#head < this.#queue.length) {
      const batch = this.#takeBatch();
      this.#stats.batchStarted();
      void this.#commit(batch).finally(() => {
        this.#stats.batchEnded();
        this.#pump();
      });
    }
  }

  #takeBatch(): Group[] {
    const queue = this.#queue;
    const start = this.#head;
    let end = start;
    let size = 0;
    while (end < queue.length) {
      const count = queue[end]!.group.count;
      if (end > start && size + count > this.#maxBatchPoints) break;
      size += count;
      end++;
    }
    const batch = queue.slice(start, end);
    if (end === queue.length) {
      this.#queue = [];
      this.#head = 0;
    } else if (end > 4096 && end * 2 > queue.length) {
      // Mostly taken: let the taken part go.
      this.#queue = queue.slice(end);
      this.#head = 0;
    } else {
      this.#head = end;
    }
    return batch;
  }

  async #commit(batch: Group[]): Promise<void> {
    let count = 0;
    for (const { group } of batch) count += group.count;
    const body = batch.length === 1 ? batch[0]!.group.lines : requestBody(batch);
    const outcome = await this.#writeWithRetry(body, count, Date.now() + this.#retryForMs);
    if (outcome.ok) return batch.forEach((g) => this.#settle(g, outcome));
    if (outcome.error.code === 'PW_ERR_STORAGE_UNAVAILABLE' || batch.length === 1) {
      return batch.forEach((g) => this.#settle(g, outcome));
    }
    // A 400 names neither the caller nor always the point at fault (and with
    // "partial write" the rest is already stored, so rewriting it is harmless:
    // same series and time overwrite). Each caller's group alone finds out.
    this.#log.warn({ groups: batch.length, error: outcome.error.detail }, 'InfluxDB refused a batch; writing its groups one by one');
    const deadline = Date.now() + this.#retryForMs;
    let unavailable: Outcome | undefined;
    for (const group of batch) {
      const result = unavailable ?? (await this.#writeWithRetry(group.group.lines, group.group.count, deadline));
      if (!result.ok && result.error.code === 'PW_ERR_STORAGE_UNAVAILABLE') unavailable = result;
      this.#settle(group, result);
    }
  }

  #settle(group: Group, outcome: Outcome): void {
    if (outcome.ok) {
      this.#stats.settledOk(group.group.count);
      group.settlement.settle(group.index, undefined);
    } else {
      this.#stats.settledFailed(group.group.count, outcome.error.code === 'PW_ERR_STORAGE_REJECTED');
      group.settlement.settle(group.index, outcome.error);
    }
  }

  /** Exponential backoff with full jitter; the last attempt is made at the deadline, not skipped. */
  async #writeWithRetry(body: string | Buffer, points: number, deadline: number): Promise<Outcome> {
    for (let attempt = 0; ; attempt += 1) {
      const started = performance.now();
      try {
        this.#stats.requestSent();
        await this.#target.writeLines(body);
        this.#stats.requestOk(performance.now() - started);
        return { ok: true };
      } catch (err) {
        this.#stats.requestFailed();
        const failure = classifyInfluxError(err);
        if (failure.kind === 'rejected') {
          return { ok: false, error: new PulsewireError('PW_ERR_STORAGE_REJECTED', failure.detail, { cause: err }) };
        }
        const remaining = deadline - Date.now();
        if (remaining <= 0) {
          this.#log.error({ points, attempts: attempt + 1, error: failure.detail }, 'InfluxDB unavailable; giving up on batch');
          return { ok: false, error: new PulsewireError('PW_ERR_STORAGE_UNAVAILABLE', failure.detail, { cause: err }) };
        }
        if (attempt === 0) this.#log.warn({ points, error: failure.detail }, 'InfluxDB write failed; retrying');
        this.#stats.retried();
        await sleep(Math.min(remaining, Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt)));
      }
    }
  }
}
