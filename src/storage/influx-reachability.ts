/**
 * Whether InfluxDB answers, as /readyz reports it, without a round trip to
 * InfluxDB inside every probe. Why: under load influxd answers its /ping in
 * tens to hundreds of milliseconds (it shares the machine and is busy
 * writing), so a probe's answer time measured InfluxDB more than the hub:
 * /readyz p99 was twice /healthz's in the soak (BENCHMARKS.md). Now a ping
 * runs in the background, one at a time, every `everyMs`; /readyz answers
 * with its last result while that is younger than `staleMs`, and pings
 * itself (as before) when it is not: just after start, or when the timer
 * itself is late. A change of InfluxDB's state shows within about a second.
 */
export type Ping = (timeoutMs: number) => Promise<boolean>;

export type ReachabilityOptions = {
  /** Background pings, ms between the end of one and the start of the next (default 1000). */
  everyMs?: number;
  /** A result older than this is not used: /readyz pings itself (default 3000). */
  staleMs?: number;
  /** Each ping's timeout (default 2000). */
  timeoutMs?: number;
  now?: () => number;
};

export class InfluxReachability {
  readonly #ping: Ping;
  readonly #everyMs: number;
  readonly #staleMs: number;
  readonly #timeoutMs: number;
  readonly #now: () => number;
  #last: { at: number; ok: boolean } | undefined;
  #inFlight: Promise<boolean> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running = false;

  constructor(ping: Ping, options: ReachabilityOptions = {}) {
    this.#ping = ping;
    this.#everyMs = options.everyMs ?? 1000;
    this.#staleMs = options.staleMs ?? 3000;
    this.#timeoutMs = options.timeoutMs ?? 2000;
    this.#now = options.now ?? Date.now;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#schedule(0);
  }

  stop(): void {
    this.#running = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** The last result if fresh, else a ping now (shared with any in flight). */
  async reachable(): Promise<boolean> {
    const last = this.#last;
    if (last !== undefined && this.#now() - last.at < this.#staleMs) return last.ok;
    return this.#pingOnce();
  }

  #pingOnce(): Promise<boolean> {
    this.#inFlight ??= this.#ping(this.#timeoutMs)
      .catch(() => false)
      .then((ok) => {
        this.#last = { at: this.#now(), ok };
        this.#inFlight = undefined;
        return ok;
      });
    return this.#inFlight;
  }

  #schedule(delayMs: number): void {
    this.#timer = setTimeout(() => {
      void this.#pingOnce().then(() => { if (this.#running) this.#schedule(this.#everyMs); });
    }, delayMs);
    this.#timer.unref();
  }
}
