/**
 * Durable home of commands (protocol section 3: "a durable per-device
 * queue"): bucket `commands`, keyed [deviceId, commandId]. Command ids sort by
 * creation time, so a device's entries in key order are its queue in order.
 *
 * The store is the truth, not any node's memory: every change of a command is
 * a revision-checked transition (`transition`), so when two writers race (the
 * device's RESULT and a deadline, a cancel and the outbox's sending mark, two
 * nodes) exactly one wins and the other sees the outcome.
 */
import { collect, type Bucket } from '../stores/bucket.js';
import type { CommandStatus, CommandView } from './types.js';

/** A command as stored: the API's view with times as epoch milliseconds. */
export type CommandRecord = Omit<CommandView, 'createdAt' | 'sentAt' | 'completedAt'> & {
  createdAt: number;
  /** Committed before the COMMAND frame is written: after a crash, the command may have reached the device. */
  sendingAt?: number;
  /** The node that wrote the sending mark (a mark of a node that is gone counts as sent). */
  sendingBy?: string;
  sentAt?: number;
  completedAt?: number;
};

export type Transition = { before: CommandRecord; after: CommandRecord };

export class CommandStore {
  readonly #bucket: Bucket<CommandRecord>;

  constructor(bucket: Bucket<CommandRecord>) {
    this.#bucket = bucket;
  }

  /** Stores a new command; resolves once committed. */
  async create(record: CommandRecord): Promise<void> {
    if ((await this.#bucket.create([record.deviceId, record.id], record)) === undefined) {
      throw new Error(`command ${record.id} exists already`);
    }
  }

  async get(deviceId: string, commandId: string): Promise<CommandRecord | undefined> {
    return (await this.#bucket.get([deviceId, commandId]))?.value;
  }

  /** One device's commands in creation order. */
  async byDevice(deviceId: string): Promise<CommandRecord[]> {
    return (await collect(this.#bucket.entries({ group: deviceId }))).map((entry) => entry.value);
  }

  /** Every stored command (deadlines are re-armed from these when a node takes that work over). */
  async *all(): AsyncGenerator<CommandRecord> {
    for await (const entry of this.#bucket.entries()) yield entry.value;
  }

  /**
   * Applies `change` as one revision-checked update, read again and retried
   * when someone else changed the command first. `change` returns the new
   * record, or undefined to leave the command as it is (its rule no longer
   * applies). Resolves with both versions once committed, undefined when
   * nothing changed or the command does not exist.
   */
  async transition(deviceId: string, commandId: string, change: (current: CommandRecord) => CommandRecord | undefined): Promise<Transition | undefined> {
    for (;;) {
      const entry = await this.#bucket.get([deviceId, commandId]);
      if (!entry) return undefined;
      const after = change(structuredClone(entry.value));
      if (!after) return undefined;
      if ((await this.#bucket.update([deviceId, commandId], after, entry.revision)) !== undefined) return { before: entry.value, after };
    }
  }

  /** Deletes finished commands completed before `beforeMs`; returns how many. */
  async prune(beforeMs: number, isFinal: (status: CommandStatus) => boolean): Promise<number> {
    let pruned = 0;
    for await (const entry of this.#bucket.entries()) {
      const { status, completedAt, createdAt } = entry.value;
      if (!isFinal(status) || (completedAt ?? createdAt) >= beforeMs) continue;
      if (await this.#bucket.delete(entry.key, entry.revision)) pruned++;
    }
    return pruned;
  }

  flush(): Promise<void> {
    return this.#bucket.flush();
  }
}
