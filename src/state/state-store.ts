/**
 * Durable reported and desired state per device (protocol section 3: "the hub
 * keeps both documents durably"): lmdb sub-database `state` in the commands
 * environment, keyed by device id. Documents are small and read on every
 * connect, so the store keeps each one it has loaded in memory; that copy is
 * the truth and lmdb's async put only has to make it durable.
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
  readonly #cache = new Map<string, StateRecord>();
  readonly #writes = new Set<Promise<unknown>>();

  constructor(root: RootDatabase) {
    this.#db = root.openDB<StateRecord, string>({ name: 'state' });
  }

  get(deviceId: string): StateRecord {
    let record = this.#cache.get(deviceId);
    if (!record) {
      record = this.#db.get(deviceId) ?? { ...EMPTY_STATE };
      this.#cache.set(deviceId, record);
    }
    return record;
  }

  /** Replaces the device's record; resolves once committed. */
  put(deviceId: string, record: StateRecord): Promise<void> {
    this.#cache.set(deviceId, record);
    const write = this.#db.put(deviceId, record).then(() => undefined).finally(() => this.#writes.delete(write));
    this.#writes.add(write);
    return write;
  }

  remove(deviceId: string): Promise<void> {
    this.#cache.delete(deviceId);
    const write = this.#db.remove(deviceId).then(() => undefined).finally(() => this.#writes.delete(write));
    this.#writes.add(write);
    return write;
  }

  async flush(): Promise<void> {
    await Promise.allSettled([...this.#writes]);
  }
}
