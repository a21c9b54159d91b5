/**
 * Durable home of commands (protocol section 3: "a durable per-device
 * queue"), in two buckets keyed [deviceId, commandId]: `commands` holds the
 * unfinished ones (queued, sent, received), `commands-done` the finished ones
 * until the retention prune. Command ids sort by creation time, so a device's
 * entries in key order are its queue in order.
 *
 * Apart because they are read apart: every create and every delivery round
 * reads a device's queue, and finished commands pile up for days. In
 * JetStream, listing one device's keys costs in proportion to every key of
 * the bucket (measured: a command's cost doubled by 10,000 finished ones), so
 * the queue's bucket holds only what is still moving.
 *
 * The store is the truth, not any node's memory: every change of an
 * unfinished command is a revision-checked transition (`transition`), so when
 * two writers race (the device's RESULT and a deadline, a cancel and the
 * outbox's sending mark, two nodes) exactly one wins and the other sees the
 * outcome. The winning transition to a final status is made in `commands`
 * first; only then is the command moved to `commands-done`. A crash between
 * the two leaves a final command in `commands`, which reads treat as
 * finished and `settleFinished` moves later.
 */
import { collect, compareKeys, type Bucket } from '../stores/bucket.js';
import type { CommandStatus, CommandView } from './types.js';
import { FINAL_COMMAND_STATUSES } from './types.js';

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

const finished = (record: CommandRecord): boolean => FINAL_COMMAND_STATUSES.has(record.status);

export class CommandStore {
  readonly #active: Bucket<CommandRecord>;
  readonly #done: Bucket<CommandRecord>;
  /** Moves to `commands-done` under way (not awaited by transitions: reads find a final command in either bucket). */
  readonly #moving = new Set<Promise<void>>();

  constructor(buckets: { commands: Bucket<CommandRecord>; commandsDone: Bucket<CommandRecord> }) {
    this.#active = buckets.commands;
    this.#done = buckets.commandsDone;
  }

  /** Stores a new command; resolves once committed. */
  async create(record: CommandRecord): Promise<void> {
    if ((await this.#active.create([record.deviceId, record.id], record)) === undefined) {
      throw new Error(`command ${record.id} exists already`);
    }
  }

  async get(deviceId: string, commandId: string): Promise<CommandRecord | undefined> {
    return (await this.#active.get([deviceId, commandId]))?.value ?? (await this.#done.get([deviceId, commandId]))?.value;
  }

  /** The device's unfinished commands in creation order: its queue (read on every create and delivery round). */
  async queueOf(deviceId: string): Promise<CommandRecord[]> {
    return (await collect(this.#active.entries({ group: deviceId }))).map((entry) => entry.value).filter((record) => !finished(record));
  }

  /** All of the device's commands, finished ones included, in creation order (the API's list). */
  async byDevice(deviceId: string): Promise<CommandRecord[]> {
    const [active, done] = await Promise.all([collect(this.#active.entries({ group: deviceId })), collect(this.#done.entries({ group: deviceId }))]);
    const byId = new Map<string, CommandRecord>();
    for (const entry of done) byId.set(entry.value.id, entry.value);
    for (const entry of active) if (!byId.has(entry.value.id)) byId.set(entry.value.id, entry.value);
    return [...byId.values()].sort((a, b) => compareKeys(a.id, b.id));
  }

  /** Every unfinished command (deadlines are re-armed from these when a node takes that work over). */
  async *unfinished(): AsyncGenerator<CommandRecord> {
    for await (const entry of this.#active.entries()) if (!finished(entry.value)) yield entry.value;
  }

  /**
   * Applies `change` to an unfinished command as one revision-checked update,
   * read again and retried when someone else changed it first. `change`
   * returns the new record, or undefined to leave the command as it is (its
   * rule no longer applies). It is given a shallow copy: it may set fields
   * of it but must not change the values inside (args, result), which
   * `before` shares. A deep copy (structuredClone) cost 2.6 KB of garbage per
   * transition, three transitions a command. Resolves with both versions once committed,
   * undefined when nothing changed or the command is unknown or finished.
   * A command that became final is moved to the finished ones before this
   * resolves.
   */
  async transition(deviceId: string, commandId: string, change: (current: CommandRecord) => CommandRecord | undefined): Promise<Transition | undefined> {
    const key = [deviceId, commandId] as const;
    for (;;) {
      const entry = await this.#active.get(key);
      if (!entry || finished(entry.value)) return undefined;
      const after = change({ ...entry.value });
      if (!after) return undefined;
      const revision = await this.#active.update(key, after, entry.revision);
      if (revision === undefined) continue;
      if (finished(after)) this.#move(after, revision);
      return { before: entry.value, after };
    }
  }

  /** Moves final commands a crash left among the unfinished ones; returns how many. */
  async settleFinished(): Promise<number> {
    let moved = 0;
    for await (const entry of this.#active.entries()) {
      if (!finished(entry.value)) continue;
      await this.#moveToDone(entry.value, entry.revision);
      moved++;
    }
    return moved;
  }

  /** Deletes finished commands completed before `beforeMs`; returns how many. */
  async prune(beforeMs: number): Promise<number> {
    let pruned = 0;
    for await (const entry of this.#done.entries()) {
      const { completedAt, createdAt } = entry.value;
      if ((completedAt ?? createdAt) >= beforeMs) continue;
      if (await this.#done.delete(entry.key, entry.revision)) pruned++;
    }
    return pruned;
  }

  async flush(): Promise<void> {
    await Promise.allSettled([...this.#moving]);
    await Promise.all([this.#active.flush(), this.#done.flush()]);
  }

  #move(record: CommandRecord, revision: number): void {
    // A failed move leaves the final command among the unfinished ones, where settleFinished finds it.
    const moving = this.#moveToDone(record, revision).catch(() => undefined).finally(() => this.#moving.delete(moving));
    this.#moving.add(moving);
  }

  async #moveToDone(record: CommandRecord, revision: number): Promise<void> {
    const key = [record.deviceId, record.id] as const;
    await this.#done.put(key, record);
    // Only the version just written: nothing changes a final command, so another revision means another mover was first.
    await this.#active.delete(key, revision);
  }
}

export type { CommandStatus };
