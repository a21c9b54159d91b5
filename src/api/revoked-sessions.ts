/**
 * Logged-out browser sessions kept in lmdb (key: the session's nonce, value:
 * when it would have expired), so a logout outlives a hub restart. Writes use
 * put/remove: lmdb's async transaction() does not resolve on some hosts.
 */
import type { Database } from 'lmdb';
import type { RevokedSessions } from './session.js';

export class LmdbRevokedSessions implements RevokedSessions {
  readonly #db: Database<number, string>;

  constructor(db: Database<number, string>) {
    this.#db = db;
  }

  has(nonce: string): boolean {
    return this.#db.get(nonce) !== undefined;
  }

  add(nonce: string, expiresAt: number): void {
    void this.#db.put(nonce, expiresAt);
  }

  prune(now: number, max: number): void {
    let kept = 0;
    for (const { key, value } of this.#db.getRange()) {
      if (value <= now) void this.#db.remove(key);
      else kept++;
    }
    // Past the bound, forget those that expire first (they would be harmless soonest).
    if (kept <= max) return;
    const live = [...this.#db.getRange()].filter((e) => e.value > now).sort((a, b) => a.value - b.value);
    for (const { key } of live.slice(0, kept - max)) void this.#db.remove(key);
  }
}
