/**
 * Points InfluxDB refused (400: a field type conflict, a partial write, a
 * value it cannot store), kept with the reason and the time so an operator
 * can see and fix them (GET /v1/dead-letters) instead of the stream being
 * blocked by them or them vanishing. Integer keys in arrival order; pages
 * come newest first.
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

export class DeadLetters {
  readonly #db: Database<Stored, number>;
  readonly #now: () => number;
  #nextId: number;
  #count = 0;
  #pointsSinceStart = 0;

  constructor(db: Database<Stored, number>, now: () => number = Date.now) {
    this.#db = db;
    this.#now = now;
    let last = 0;
    for (const key of db.getKeys({})) {
      this.#count++;
      last = key;
    }
    this.#nextId = last + 1;
  }

  add(deviceId: string, points: IPoint[], reason: string): Promise<boolean> {
    this.#count++;
    this.#pointsSinceStart += points.length;
    return this.#db.put(this.#nextId++, { at: this.#now(), deviceId, reason, points });
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

  /** Points dead-lettered by this process (a counter for metrics). */
  get pointsSinceStart(): number {
    return this.#pointsSinceStart;
  }
}
