/**
 * A token bucket: `ratePerS` tokens a second, at most `capacity` saved up,
 * so bursts up to the capacity pass and the sustained rate is bounded. One
 * per device and limit (HTTP fallback requests, WebSocket messages and
 * readings): two numbers and a time, no timer.
 */
export type TokenBucketOptions = {
  ratePerS: number;
  capacity: number;
  now?: () => number;
};

export class TokenBucket {
  readonly #ratePerMs: number;
  readonly #capacity: number;
  readonly #now: () => number;
  #tokens: number;
  #at: number;

  constructor(options: TokenBucketOptions) {
    this.#ratePerMs = options.ratePerS / 1000;
    this.#capacity = options.capacity;
    this.#now = options.now ?? Date.now;
    this.#tokens = options.capacity;
    this.#at = this.#now();
  }

  /**
   * 0 when `amount` tokens were taken, else milliseconds until they could be.
   * An amount above the capacity is taken from a full bucket, leaving it in
   * debt, so no single message (a pack of the largest allowed size) is
   * refused for ever; the debt is paid before the next one passes.
   */
  take(amount = 1): number {
    const now = this.#now();
    this.#tokens = Math.min(this.#capacity, this.#tokens + (now - this.#at) * this.#ratePerMs);
    this.#at = now;
    const needed = Math.min(amount, this.#capacity);
    if (this.#tokens >= needed) {
      this.#tokens -= amount;
      return 0;
    }
    return Math.ceil((needed - this.#tokens) / this.#ratePerMs);
  }
}
