/**
 * The writer's counters, kept apart so the metrics module reads one plain
 * object and the writer's logic is not interleaved with bookkeeping.
 */

/** Upper bounds (ms) of the write latency histogram; +Inf is implied by latencyCount. */
export const WRITE_LATENCY_BUCKETS_MS = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000] as const;

export type WriterStats = {
  /** HTTP write requests sent, including retries and per-group rewrites. */
  readonly batches: number;
  /** Points whose write() resolved. */
  readonly pointsWritten: number;
  /** HTTP write requests that failed (each retry counts). */
  readonly writeErrors: number;
  readonly retries: number;
  /** Points whose write() rejected with PW_ERR_STORAGE_REJECTED. */
  readonly rejectedPoints: number;
  /** Points whose write() rejected with PW_ERR_STORAGE_UNAVAILABLE. */
  readonly failedPoints: number;
  /** Gauge: points accepted by write() and not yet settled (waiting or in flight). */
  readonly queuedPoints: number;
  /** Gauge: batches being written now. */
  readonly inFlight: number;
  /** Duration of the last successful HTTP write. */
  readonly lastWriteMs: number;
  readonly latencySumMs: number;
  readonly latencyCount: number;
  /** Cumulative counts per WRITE_LATENCY_BUCKETS_MS bound, Prometheus style. */
  readonly latencyBuckets: readonly number[];
};

export class WriterStatsRecorder {
  #batches = 0;
  #pointsWritten = 0;
  #writeErrors = 0;
  #retries = 0;
  #rejectedPoints = 0;
  #failedPoints = 0;
  #queuedPoints = 0;
  #inFlight = 0;
  #lastWriteMs = 0;
  #latencySumMs = 0;
  #latencyCount = 0;
  #buckets = WRITE_LATENCY_BUCKETS_MS.map(() => 0);

  get inFlight(): number {
    return this.#inFlight;
  }

  queued(points: number): void {
    this.#queuedPoints += points;
  }

  batchStarted(): void {
    this.#inFlight += 1;
  }

  batchEnded(): void {
    this.#inFlight -= 1;
  }

  requestSent(): void {
    this.#batches += 1;
  }

  requestOk(ms: number): void {
    this.#lastWriteMs = ms;
    this.#latencySumMs += ms;
    this.#latencyCount += 1;
    WRITE_LATENCY_BUCKETS_MS.forEach((bound, i) => {
      if (ms <= bound) this.#buckets[i]! += 1;
    });
  }

  requestFailed(): void {
    this.#writeErrors += 1;
  }

  retried(): void {
    this.#retries += 1;
  }

  settledOk(points: number): void {
    this.#queuedPoints -= points;
    this.#pointsWritten += points;
  }

  settledFailed(points: number, rejected: boolean): void {
    this.#queuedPoints -= points;
    if (rejected) this.#rejectedPoints += points;
    else this.#failedPoints += points;
  }

  snapshot(): WriterStats {
    return Object.freeze({
      batches: this.#batches,
      pointsWritten: this.#pointsWritten,
      writeErrors: this.#writeErrors,
      retries: this.#retries,
      rejectedPoints: this.#rejectedPoints,
      failedPoints: this.#failedPoints,
      queuedPoints: this.#queuedPoints,
      inFlight: this.#inFlight,
      lastWriteMs: this.#lastWriteMs,
      latencySumMs: this.#latencySumMs,
      latencyCount: this.#latencyCount,
      latencyBuckets: Object.freeze([...this.#buckets]),
    });
  }
}
