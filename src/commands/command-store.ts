/**
 * Durable home of commands (protocol section 3: "a durable per-device
 * queue"): lmdb at dataDir/commands, sub-database `commands`, keyed by
 * [deviceId, commandId]. Command ids sort by creation time, so a range read
 * of one device is its queue in order and needs no second index.
 *
 * Writes use lmdb's asynchronous put (everything issued in one event turn is
 * one commit). Until a put commits, reads would still see the old record, so
 * uncommitted records sit in an overlay that reads consult first (the same
 * approach as the device registry).
 */
import { open, type Database, type RootDatabase } from 'lmdb';
import type { CommandStatus, CommandView } from './types.js';

/** A command as stored: the API's view with times as epoch milliseconds. */
export type CommandRecord = Omit<CommandView, 'createdAt' | 'sentAt' | 'completedAt'> & {
  createdAt: number;
  /** Committed before the COMMAND frame is written: after a crash, the command may have reached the device. */
  sendingAt?: number;
  sentAt?: number;
  completedAt?: number;
};

type Key = [deviceId: string, commandId: string];

export class CommandStore {
  readonly root: RootDatabase;
  readonly #db: Database<CommandRecord, Key>;
  /** deviceId → commandId → record not yet committed. */
  readonly #overlay = new Map<string, Map<string, CommandRecord>>();
  readonly #writes = new Set<Promise<unknown>>();

  private constructor(root: RootDatabase) {
    this.root = root;
    this.#db = root.openDB<CommandRecord, Key>({ name: 'commands' });
  }

  static open(path: string): CommandStore {
    return new CommandStore(open({ path }));
  }

  /** Resolves once the record is committed. */
  put(record: CommandRecord): Promise<void> {
    const copy = { ...record };
    let byId = this.#overlay.get(record.deviceId);
    if (!byId) this.#overlay.set(record.deviceId, (byId = new Map()));
    byId.set(record.id, copy);
    const write = this.#db.put([record.deviceId, record.id], copy).then(() => undefined).finally(() => {
      const current = this.#overlay.get(record.deviceId);
      // A later put of the same command replaced the overlay entry: leave that one.
      if (current?.get(record.id) === copy) {
        current.delete(record.id);
        if (current.size === 0) this.#overlay.delete(record.deviceId);
      }
      this.#writes.delete(write);
    });
    this.#writes.add(write);
    return write;
  }

  get(deviceId: string, commandId: string): CommandRecord | undefined {
    return this.#overlay.get(deviceId)?.get(commandId) ?? this.#db.get([deviceId, commandId]);
  }

  /** One device's commands in creation order. */
  byDevice(deviceId: string): CommandRecord[] {
    const merged = new Map<string, CommandRecord>();
    for (const { value } of this.#db.getRange({ start: [deviceId], end: [deviceId, '\uffff'] })) merged.set(value.id, value);
    for (const [id, record] of this.#overlay.get(deviceId) ?? []) merged.set(id, record);
    return [...merged.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** Every stored command (start-up: the service reloads the unfinished ones). */
  *all(): IterableIterator<CommandRecord> {
    for (const { value } of this.#db.getRange({})) yield value;
  }

  /** Deletes finished commands completed before `beforeMs`; returns how many. */
  async prune(beforeMs: number, isFinal: (status: CommandStatus) => boolean): Promise<number> {
    const doomed: Key[] = [];
    for (const { key, value } of this.#db.getRange({})) {
      if (isFinal(value.status) && (value.completedAt ?? value.createdAt) < beforeMs) doomed.push(key);
    }
    await Promise.all(doomed.map((key) => this.#db.remove(key)));
    return doomed.length;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.#writes]);
    await this.root.close();
  }
}
