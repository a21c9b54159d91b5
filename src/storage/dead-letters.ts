/**
 * Points InfluxDB refused (400: a field type conflict, a partial write, a
 * value it cannot store), kept with the reason and the time so an operator
 * can see and fix them (GET /v1/dead-letters) instead of the stream being
 * blocked by them or them vanishing. Integer keys in arrival order; pages
 * come newest first.
 *
 * At most `max` letters (PULSEWIRE_DEAD_LETTERS_MAX) are kept: a device
 * whose every message conflicts with the stored field types would otherwise
 * fill the disk at its message rate. Past it the oldest go, in the commit
 * that adds the newest, and are counted (pulsewire_dead_letters_dropped_total):
 * the newest say what is wrong now.
 */
import type { IPoint } from 'influx';
import type { Database } from 'lmdb';

export type DeadLetter = {
  readonly id: number;
  readonly at: number;
  readonly deviceId: string;
  readonly reason: string;
  readonly points: IPoint[];
};

type Stored = Omit<DeadLetter, 'id'>;

export const MAX_DEAD_LETTER_PAGE = 1000;
/** Default of PULSEWIRE_DEAD_LETTERS_MAX. */
export const DEFAULT_DEAD_LETTERS_MAX = 10_000;

export class DeadLetters {
  readonly #db: Database<Stored, number>;
  readonly #now: () => number;
  readonly #max: number;
  #nextId: number;
  #count = 0;
  #pointsSinceStart = 0;
  #dropped = 0;

  constructor(db: Database<Stored, number>, now: () => number = Date.now, max = DEFAULT_DEAD_LETTERS_MAX) {
    this.#db = db;
    this.#now = now;
    this.#max = max;
    let last = 0;
    for (const key of db.getKeys({})) {
      this.#count++;
      last = key;
    }
    this.#nextId = last + 1;
    // The bound may have been lowered since the letters were written.
    void this.#dropOldest().catch(() => undefined);
  }

  /** Stores a letter, and drops the oldest past the bound in the same commit. */
  add(deviceId: string, points: IPoint[], reason: string): Promise<unknown> {
    this.#count++;
    this.#pointsSinceStart += points.length;
    return Promise.all([this.#db.put(this.#nextId++, { at: this.#now(), deviceId, reason, points }), this.#dropOldest()]);
  }

  #dropOldest(): Promise<unknown> {
    const excess = this.#count - this.#max;
    if (excess <= 0) return Promise.resolve();
    const removals: Promise<boolean>[] = [];
    for (const key of this.#db.getKeys({ limit: excess })) removals.push(this.#db.remove(key));
    this.#count -= removals.length;
    this.#dropped += removals.length;
    return Promise.all(removals);
  }

  /** Newest first; `before` is the id of the last letter of the previous page. */
  page(limit: number, before?: number): { deadLetters: DeadLetter[]; nextCursor?: number } {
    const deadLetters: DeadLetter[] = [];
    const range = before === undefined ? { reverse: true } : { reverse: true, start: before, exclusiveStart: true };
    for (const { key, value } of this.#db.getRange(range)) {
      if (deadLetters.length === limit) return { deadLetters, nextCursor: deadLetters[limit - 1]!.id };
      deadLetters.push({ id: key, ...value });
    }
    return { deadLetters };
  }

  /** Letters stored now. */
  get count(): number {
    return this.#count;
  }

  /** Letters dropped by this process to stay within the bound (a counter for metrics). */
  get droppedSinceStart(): number {
    return this.#dropped;
  }

  /** Points dead-lettered by this process (a counter for metrics). */
  get pointsSinceStart(): number {
    return this.#pointsSinceStart;
  }
}
