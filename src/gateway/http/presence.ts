/**
 * Presence of HTTP fallback devices (protocol section 8): a device is online
 * while it has a request open or made one within the last 2 x pingInterval.
 *
 * Cost does not grow with the fleet: links with no request open sit in one
 * Map in the order they went idle (a Map iterates in insertion order, and a
 * link is re-inserted each time it goes idle), so the sweep reads from the
 * front and stops at the first link that is still fresh. Each sweep costs
 * O(links that timed out + 1), a request O(1); one timer serves every device.
 * A link with a request open is not in the Map at all, so a long poll keeps
 * its device online however long it waits.
 */

export interface Presence {
  /** Requests open right now. */
  openRequests: number;
  /** Called once, when the link has had no request for the timeout. */
  onIdleTimeout(): void;
}

export type PresenceOptions = {
  /** 2 x pingInterval. */
  timeoutMs: number;
  /** How often to look (a device goes offline at most this late). */
  sweepMs: number;
  now?: () => number;
};

export class PresenceTracker<T extends Presence> {
  readonly #idleSince = new Map<T, number>();
  readonly #timeoutMs: number;
  readonly #sweepMs: number;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: PresenceOptions) {
    this.#timeoutMs = options.timeoutMs;
    this.#sweepMs = options.sweepMs;
    this.#now = options.now ?? (() => performance.now());
  }

  start(): void {
    this.#timer ??= setInterval(() => this.sweep(), this.#sweepMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  requestStarted(link: T): void {
    link.openRequests++;
    this.#idleSince.delete(link);
  }

  requestEnded(link: T): void {
    if (--link.openRequests > 0) return;
    link.openRequests = 0;
    this.#idleSince.delete(link);
    this.#idleSince.set(link, this.#now());
  }

  /** The link ended for another reason (replaced, kicked, shutdown): no timeout for it. */
  forget(link: T): void {
    this.#idleSince.delete(link);
  }

  get idleCount(): number {
    return this.#idleSince.size;
  }

  sweep(): void {
    const cutoff = this.#now() - this.#timeoutMs;
    for (const [link, since] of this.#idleSince) {
      if (since > cutoff) break; // the rest went idle later
      this.#idleSince.delete(link);
      link.onIdleTimeout();
    }
  }
}
