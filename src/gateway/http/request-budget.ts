/**
 * Per-device limits of the HTTP fallback, answered with 429 (protocol
 * section 8). The WebSocket path bounds a device by its window of 32
 * unacknowledged TELEMETRY messages and by TCP backpressure; HTTP has no
 * backpressure, so it gets the same window across concurrent requests plus
 * a request rate (a token bucket), which also stops a firmware bug that
 * polls with wait=0 in a tight loop.
 */
import { MAX_IN_FLIGHT } from '../../protocol/limits.js';
import { TokenBucket } from '../token-bucket.js';

export type BudgetOptions = {
  /** Sustained requests per second. */
  ratePerS: number;
  now?: () => number;
};

export class RequestBudget {
  /** A burst of a few requests (a sleepy device's POST then GET, a retry) always passes. */
  readonly #requests: TokenBucket;
  /** TELEMETRY messages of this device whose ACK is not decided yet, over all its requests. */
  telemetryInFlight = 0;

  constructor(options: BudgetOptions) {
    this.#requests = new TokenBucket({ ratePerS: options.ratePerS, capacity: Math.max(10, 2 * options.ratePerS), ...(options.now ? { now: options.now } : {}) });
  }

  /** 0 when the request may go ahead (one token taken), else milliseconds until it may. */
  takeRequest(): number {
    return this.#requests.take();
  }

  /** Whether `count` more TELEMETRY messages fit in the device's window of 32. */
  fitsWindow(count: number): boolean {
    return this.telemetryInFlight + count <= MAX_IN_FLIGHT;
  }
}
