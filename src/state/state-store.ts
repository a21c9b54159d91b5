/**
 * Durable reported and desired state per device (protocol section 3: "the hub
 * keeps both documents durably"): lmdb sub-database `state` in the commands
 * environment, keyed by device id. Documents are small and read on every
 * connect, so the store keeps each one it has loaded in memory; that copy is
 * the truth and lmdb's async put only has to make it durable.
 *
 * Firmware keeps the last desired version it applied and ignores lower ones,
 * so a device id's versions never go backwards: removing a device leaves its
 * last version in `desired-versions`, and a re-provisioned device continues
 * above it (lastVersion).
 */
import type { Database, RootDatabase } from 'lmdb';
import type { JsonObject } from './types.js';

export type StateRecord = {
  reported: JsonObject;
  desired: JsonObject;
  version: number;
  reportedAt?: number;
  desiredAt?: number;
};

export const EMPTY_STATE: Readonly<StateRecord> = Object.freeze({ reported: {}, desired: {}, version: 0 });

export class StateStore {
  readonly #db: Database<StateRecord, string>;
  /** Highest desired version of each removed device id. */
  readonly #removedVersions: Database<number, string>;
  readonly #cache = new Map<string, StateRecord>();
  readonly #removedCache = new Map<string, number>();
  readonly #writes = new Set<Promise<unknown>>();

  constructor(root: RootDatabase) {
    this.#db = root.openDB<StateRecord, string>({ name: 'state' });
    this.#removedVersions = root.openDB<number, string>({ name: 'desired-versions' });
  }

  get(deviceId: string): StateRecord {
    let record = this.#cache.get(deviceId);
    if (!record) {
      record = this.#db.get(deviceId) ?? { ...EMPTY_STATE };
      this.#cache.set(deviceId, record);
    }
    return record;
  }

  /**
   * Replaces the device's record; resolves once committed. Reads see the new
   * record at once; if the commit fails they go back to what lmdb holds
   * (unless a later put replaced the record meanwhile), so the cache never
   * keeps a document that was not saved.
   */
  put(deviceId: string, record: StateRecord): Promise<void> {
    this.#cache.set(deviceId, record);
    return this.#track(this.#db.put(deviceId, record).catch((err: unknown) => {
      if (this.#cache.get(deviceId) === record) this.#cache.delete(deviceId);
      throw err;
    }));
  }

  /** The highest desired version this device id ever had, removals included (0: none). */
  lastVersion(deviceId: string): number {
    return Math.max(this.get(deviceId).version, this.#removedVersion(deviceId));
  }

  /** Forgets the device's documents; its last version stays (issued first: both go in one commit). */
  remove(deviceId: string): Promise<void> {
    const last = this.lastVersion(deviceId);
    this.#cache.delete(deviceId);
    const marked = last > this.#removedVersion(deviceId) ? this.#track(this.#removedVersions.put(deviceId, last)) : undefined;
    if (marked) this.#removedCache.set(deviceId, last);
    return Promise.all([marked, this.#track(this.#db.remove(deviceId))]).then(() => undefined);
  }

  #removedVersion(deviceId: string): number {
    let version = this.#removedCache.get(deviceId);
    if (version === undefined) this.#removedCache.set(deviceId, (version = this.#removedVersions.get(deviceId) ?? 0));
    return version;
  }

  #track(work: Promise<unknown>): Promise<void> {
    const write = work.then(() => undefined).finally(() => this.#writes.delete(write));
    this.#writes.add(write);
    return write;
  }

  async flush(): Promise<void> {
    await Promise.allSettled([...this.#writes]);
  }
}
