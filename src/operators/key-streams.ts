/**
 * Live streams (WebSocket and SSE) by the operator key that opened them, so a
 * key that stops working stops streaming at once: revoked on any node (the
 * key store's watch tells every node), or past its expiry (a timer per
 * stream; there are few operator streams, unlike devices). The bootstrap key
 * has neither.
 */
import { PulsewireError } from '../errors/catalog.js';
import type { Operator } from './operator-keys.js';

/** setTimeout's longest delay (about 24.8 days); later expiries re-arm. */
const MAX_TIMER_MS = 2 ** 31 - 1;

type Stream = { end(error: PulsewireError): void; timer: NodeJS.Timeout | undefined };

export class KeyStreams {
  readonly #byKey = new Map<string, Set<Stream>>();
  readonly #now: () => number;

  constructor(options: { now?: () => number } = {}) {
    this.#now = options.now ?? Date.now;
  }

  /** Open streams, for tests and metrics. */
  get size(): number {
    let n = 0;
    for (const streams of this.#byKey.values()) n += streams.size;
    return n;
  }

  /** Follows one stream; `end` is called at most once. Call the returned function when the stream closes. */
  track(operator: Operator, end: (error: PulsewireError) => void): () => void {
    const stream: Stream = { end, timer: undefined };
    let streams = this.#byKey.get(operator.keyId);
    if (!streams) this.#byKey.set(operator.keyId, (streams = new Set()));
    streams.add(stream);
    const release = () => {
      clearTimeout(stream.timer);
      streams.delete(stream);
      if (streams.size === 0 && this.#byKey.get(operator.keyId) === streams) this.#byKey.delete(operator.keyId);
    };
    if (operator.expiresAt !== undefined) {
      const expiresAt = operator.expiresAt;
      const arm = () => {
        const left = expiresAt - this.#now();
        if (left <= 0) {
          release();
          return end(new PulsewireError('PW_ERR_KEY_EXPIRED', operator.name));
        }
        stream.timer = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
        stream.timer.unref();
      };
      arm();
    }
    return release;
  }

  /** Ends every stream of the key (revoked, or deleted from the store). */
  revoked(keyId: string): void {
    const streams = this.#byKey.get(keyId);
    if (!streams) return;
    this.#byKey.delete(keyId);
    for (const stream of streams) {
      clearTimeout(stream.timer);
      stream.end(new PulsewireError('PW_ERR_KEY_REVOKED', keyId));
    }
  }

  close(): void {
    for (const streams of this.#byKey.values()) for (const stream of streams) clearTimeout(stream.timer);
    this.#byKey.clear();
  }
}
