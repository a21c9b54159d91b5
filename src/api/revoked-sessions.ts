/**
 * Logged-out browser sessions kept in lmdb (key: the session's nonce, value:
 * when it would have expired), so a logout outlives a hub restart. Writes are
 * synchronous: an async put is not visible to reads until it commits, and the
 * logged-out cookie must stop working on the very next request. Logouts are
 * rare, so the cost of a sync commit does not matter.
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
    this.#db.putSync(nonce, expiresAt);
  }

  prune(now: number, max: number): void {
    let kept = 0;
    for (const { key, value } of this.#db.getRange()) {
      if (value <= now) this.#db.removeSync(key);
      else kept++;
    }
    // Past the bound, forget those that expire first (they would be harmless soonest).
    if (kept <= max) return;
    const live = [...this.#db.getRange()].filter((e) => e.value > now).sort((a, b) => a.value - b.value);
    for (const { key } of live.slice(0, kept - max)) this.#db.removeSync(key);
  }
}
