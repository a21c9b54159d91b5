/**
 * Live streams (WebSocket and SSE) by the operator key that opened them, so a
 * key that stops working stops streaming at once: revoked on any node (the
 * key store's watch tells every node), or past its expiry (a timer per
 * stream, weeks away if need be; there are few operator streams, unlike devices). The bootstrap key
 * has neither.
 */
import { atDeadline, type Deadline } from '../commands/deadline.js';
import { PulsewireError } from '../errors/catalog.js';
import type { Operator } from './operator-keys.js';

type Stream = { end(error: PulsewireError): void; expiry: Deadline | undefined };

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
    const stream: Stream = { end, expiry: undefined };
    let streams = this.#byKey.get(operator.keyId);
    if (!streams) this.#byKey.set(operator.keyId, (streams = new Set()));
    streams.add(stream);
    const release = () => {
      stream.expiry?.cancel();
      streams.delete(stream);
      if (streams.size === 0 && this.#byKey.get(operator.keyId) === streams) this.#byKey.delete(operator.keyId);
    };
    if (operator.expiresAt !== undefined) {
      stream.expiry = atDeadline(operator.expiresAt, () => {
        release();
        end(new PulsewireError('PW_ERR_KEY_EXPIRED', operator.name));
      }, this.#now);
    }
    return release;
  }

  /** Ends every stream of the key (revoked, or deleted from the store). */
  revoked(keyId: string): void {
    const streams = this.#byKey.get(keyId);
    if (!streams) return;
    this.#byKey.delete(keyId);
    for (const stream of streams) {
      stream.expiry?.cancel();
      stream.end(new PulsewireError('PW_ERR_KEY_REVOKED', keyId));
    }
  }

  close(): void {
    for (const streams of this.#byKey.values()) for (const stream of streams) stream.expiry?.cancel();
    this.#byKey.clear();
  }
}
