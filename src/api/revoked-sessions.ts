/**
 * Logged-out browser sessions kept in the `revoked-sessions` bucket (key: the
 * session's nonce, value: when it would have expired), so a logout outlives
 * a hub restart and holds on every node of a cluster. A revocation resolves
 * once stored, before the logout is answered, so the cookie stops working on
 * the very next request, whichever node serves it.
 */
import type { Bucket } from '../stores/bucket.js';
import type { RevokedSessions } from './session.js';

export class BucketRevokedSessions implements RevokedSessions {
  readonly #bucket: Bucket<number>;

  constructor(bucket: Bucket<number>) {
    this.#bucket = bucket;
  }

  async has(nonce: string): Promise<boolean> {
    return (await this.#bucket.get(nonce)) !== undefined;
  }

  async add(nonce: string, expiresAt: number): Promise<void> {
    await this.#bucket.put(nonce, expiresAt);
  }

  async prune(now: number, max: number): Promise<void> {
    const live: { key: string; value: number }[] = [];
    for await (const { key, value } of this.#bucket.entries()) {
      if (value <= now) await this.#bucket.delete(key);
      else live.push({ key: key as string, value });
    }
    // Past the bound, forget those that expire first (they would be harmless soonest).
    if (live.length <= max) return;
    live.sort((a, b) => a.value - b.value);
    for (const { key } of live.slice(0, live.length - max)) await this.#bucket.delete(key);
  }
}
