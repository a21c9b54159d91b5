/**
 * Keeps ingest from outrunning delivery. The spool lets the hub ACK while
 * InfluxDB is away; but while InfluxDB is *up*, ACKing faster than the
 * drainer delivers only grows the spool until it is full (measured: 60,000
 * readings/s ACKed, 1,700/s reaching InfluxDB, on one busy core). So while
 * the drainer is healthy and the backlog is above a high-water mark, ACKs
 * wait until it is back under a low-water mark: the protocol's "the hub slows
 * down by delaying ACKs, never by dropping", and devices' 32-message windows
 * turn that into backpressure. While InfluxDB is unreachable the pacer stands
 * aside: buffering an outage is what the spool is for.
 */
export type BacklogSource = {
  /** Points waiting in the spool. */
  readonly backlogPoints: number;
  /** True while deliveries fail and the drainer backs off. */
  readonly deliveryFailing: boolean;
};

export type PacerOptions = { highWaterPoints: number; lowWaterPoints: number };

export class BacklogPacer {
  readonly #source: BacklogSource;
  readonly #high: number;
  readonly #low: number;
  #waiters: (() => void)[] = [];
  #paced = 0;

  constructor(source: BacklogSource, options: PacerOptions) {
    this.#source = source;
    this.#high = options.highWaterPoints;
    this.#low = Math.min(options.lowWaterPoints, options.highWaterPoints);
  }

  /** Undefined when an ACK may go now (the hot path allocates nothing); else a promise. */
  admit(): Promise<void> | undefined {
    if (this.#waiters.length === 0 && (this.#source.deliveryFailing || this.#source.backlogPoints <= this.#high)) return undefined;
    if (this.#source.deliveryFailing) return undefined;
    this.#paced++;
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Call when the backlog shrank or delivery started failing. */
  update(): void {
    if (this.#waiters.length === 0) return;
    if (!this.#source.deliveryFailing && this.#source.backlogPoints > this.#low) return;
    const waiting = this.#waiters;
    this.#waiters = [];
    for (const release of waiting) release();
  }

  /** Shutdown: nothing will drain any more; let every held ACK go. */
  releaseAll(): void {
    const waiting = this.#waiters;
    this.#waiters = [];
    for (const release of waiting) release();
  }

  /** The backlog above which ACKs wait. */
  get highWaterPoints(): number {
    return this.#high;
  }

  get waiting(): number {
    return this.#waiters.length;
  }

  /** ACKs that had to wait, since start (a metric). */
  get pacedTotal(): number {
    return this.#paced;
  }
}
