/**
 * One sweep for every device socket (one timer for 50,000 sockets instead of
 * 50,000 timers), run every half ping interval. Each socket keeps its own
 * schedule: it is pinged at the first sweep after it was added, then one
 * interval after its previous ping; it is terminated at the first sweep at
 * which its ping is one interval old without a pong.
 *
 * The bound this gives (proved with a fake clock in
 * test/gateway/liveness.test.ts): a device whose last sign of life (its
 * connection, or a pong) was at time L is pinged at the next sweep (by
 * L + interval/2) and terminated two sweeps later, so by L + 1.5 x interval
 * plus the delays of those sweeps: within two intervals as long as three
 * consecutive sweeps together start less than half an interval late (Node's
 * setInterval runs each sweep one period after the previous one started, so
 * a busy event loop only stretches the gaps). The old rule (ping everything once per
 * interval, drop what did not answer the previous ping) left a device that
 * connected just after a sweep unpinged for a whole interval, so it went at
 * up to two intervals plus the sweep time.
 */
export interface Pingable {
  /**
   * True while the hub itself stops reading this socket (backpressure): its
   * pong cannot be read then, so the missing pong is ours, not the device's.
   */
  readonly heldByHub?: boolean;
  ping(): void;
  /** Called when the previous ping went unanswered. */
  onPingTimeout(): void;
}

/** pingSentAt: the unanswered ping (undefined: none); nextPingAt: when the next one is due. */
type Entry = { pingSentAt: number | undefined; nextPingAt: number };

export type LivenessOptions = {
  /** Milliseconds; defaults to performance.now (tests fake it with vi.useFakeTimers). */
  now?: () => number;
};

export class LivenessSweep<T extends Pingable> {
  readonly #tracked = new Map<T, Entry>();
  readonly #intervalMs: number;
  readonly #sweepMs: number;
  /**
   * A ping is "one interval old" from interval - sweep/2 on: sweeps come every
   * half interval, so the sweep two after the ping judges it even if the
   * timer fired a millisecond early; a healthy device still gets at least
   * three quarters of an interval to answer.
   */
  readonly #slackMs: number;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;

  constructor(intervalMs: number, options: LivenessOptions = {}) {
    this.#intervalMs = intervalMs;
    this.#sweepMs = Math.max(1, Math.floor(intervalMs / 2));
    this.#slackMs = this.#sweepMs / 2;
    this.#now = options.now ?? (() => performance.now());
  }

  /** How often the sweep runs (half the ping interval). */
  get sweepIntervalMs(): number {
    return this.#sweepMs;
  }

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => this.sweep(), this.#sweepMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  add(socket: T): void {
    // Due at once: pinged by the next sweep, at most half an interval away.
    this.#tracked.set(socket, { pingSentAt: undefined, nextPingAt: this.#now() });
  }

  delete(socket: T): void {
    this.#tracked.delete(socket);
  }

  /** A pong (or any sign of life the caller trusts) from this socket. */
  markAlive(socket: T): void {
    const entry = this.#tracked.get(socket);
    if (entry) entry.pingSentAt = undefined;
  }

  get size(): number {
    return this.#tracked.size;
  }

  sweep(): void {
    const now = this.#now();
    const due = now + this.#slackMs;
    for (const [socket, entry] of this.#tracked) {
      if (socket.heldByHub) {
        // Judged again once the hub reads from it: a fresh ping at the first sweep after.
        entry.pingSentAt = undefined;
        entry.nextPingAt = now;
        continue;
      }
      if (entry.pingSentAt !== undefined) {
        if (entry.pingSentAt + this.#intervalMs <= due) {
          this.#tracked.delete(socket);
          socket.onPingTimeout();
        }
        continue;
      }
      if (entry.nextPingAt <= due) {
        entry.pingSentAt = now;
        entry.nextPingAt = now + this.#intervalMs;
        socket.ping();
      }
    }
  }
}
