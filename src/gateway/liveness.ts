/**
 * One sweep for every device socket (one timer for 50,000 sockets instead of
 * 50,000 timers), run several times per ping interval (about every
 * TARGET_SWEEP_MS, at most every half interval). Each socket keeps its own
 * schedule: it is pinged at the first sweep after it was added, then one
 * interval after its previous ping; it is terminated at the first sweep at
 * which its ping is one interval old without a pong.
 *
 * The bound this gives (proved with a fake clock in
 * test/gateway/liveness.test.ts): a device whose last sign of life (its
 * connection, or a pong) was at time L is pinged at the next sweep (by
 * L + sweep) and terminated at the first sweep at which that ping is an
 * interval old, so by L + interval + 1.5 x sweep plus the delays of those
 * sweeps: within two intervals as long as they start less than
 * interval - 1.5 x sweep late in all (Node's setInterval runs each sweep one
 * period after the previous one started, so a busy event loop only stretches
 * the gaps). The old rule (ping everything once per interval, drop what did
 * not answer the previous ping) left a device that connected just after a
 * sweep unpinged for a whole interval, so it went at up to two intervals plus
 * the sweep time.
 *
 * Why sweep often: a socket is pinged at the first sweep after it is due, so
 * every socket that fell due since the previous sweep is pinged in one go.
 * With a sweep every half interval (12.5 s by default), a reconnect storm's
 * 19,000 devices were pinged in two bursts of ~9,500 pings, each blocking the
 * event loop ~200 ms (profiled in the storm bench) and again one interval
 * later. Sweeping every ~500 ms pings them as they arrived; walking the map
 * that often costs well under a millisecond per sweep at 20,000 sockets.
 */

/** About how often a sweep runs; the period is the interval cut into a whole number of parts. */
export const TARGET_SWEEP_MS = 500;
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
   * A ping is "one interval old" from interval - sweep/2 on, so the sweep one
   * interval after the ping judges it even if the timer fired a millisecond
   * early; a healthy device still gets at least interval - sweep/2 (three
   * quarters of an interval at the shortest intervals) to answer.
   */
  readonly #slackMs: number;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;

  constructor(intervalMs: number, options: LivenessOptions = {}) {
    this.#intervalMs = intervalMs;
    // A whole number of sweeps per interval: a healthy device's pings, one
    // interval apart, then fall on sweeps, so the sweep that judges a ping is
    // exactly one interval after it (no waiting for the sweep after).
    const sweepsPerInterval = Math.max(2, Math.round(intervalMs / TARGET_SWEEP_MS));
    this.#sweepMs = Math.max(1, intervalMs / sweepsPerInterval);
    this.#slackMs = this.#sweepMs / 2;
    this.#now = options.now ?? (() => performance.now());
  }

  /** How often the sweep runs: the interval cut in parts of about TARGET_SWEEP_MS, at most half of it. */
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
    // forEach, not for-of with destructuring: that makes a [socket, entry] array per device per sweep
    // (97 MiB over a minute with 10,000 devices, the most of any one function outside the command path).
    this.#tracked.forEach((entry, socket) => {
      if (socket.heldByHub) {
        // Judged again once the hub reads from it: a fresh ping at the first sweep after.
        entry.pingSentAt = undefined;
        entry.nextPingAt = now;
        return;
      }
      if (entry.pingSentAt !== undefined) {
        if (entry.pingSentAt + this.#intervalMs <= due) {
          // Deleting the entry being visited is safe in Map.forEach.
          this.#tracked.delete(socket);
          socket.onPingTimeout();
        }
        return;
      }
      if (entry.nextPingAt <= due) {
        entry.pingSentAt = now;
        entry.nextPingAt = now + this.#intervalMs;
        socket.ping();
      }
    });
  }
}
