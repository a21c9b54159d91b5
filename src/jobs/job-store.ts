/**
 * Durable home of fleet jobs, in the commands' lmdb environment (so a job's
 * bookkeeping and its commands commit in order): sub-database `jobs` (the
 * job's definition and status), `jobTargets` (the device list, fixed at
 * creation) and `jobDispatch`, keyed by [jobId, deviceId], saying what each
 * target got: a command (with its latest status) or a skip.
 *
 * A `dispatching` mark is written before the command is created, so a crash
 * between the two leaves a trace the restart resolves against the device's
 * commands instead of giving the device a second one.
 *
 * Writes are lmdb's asynchronous puts; dispatch entries not yet committed
 * sit in an overlay that reads consult first.
 */
import type { Database, RootDatabase } from 'lmdb';
import type { CommandStatus } from '../commands/types.js';
import type { JobView } from './types.js';

/** A job as stored: its view without the derived progress, times as epoch milliseconds. */
export type JobRecord = Omit<JobView, 'dispatched' | 'skipped' | 'counts' | 'createdAt' | 'completedAt'> & {
  createdAt: number;
  completedAt?: number;
};

export type Dispatch =
  | { deviceId: string; dispatching: true }
  | { deviceId: string; commandId: string; status: CommandStatus }
  | { deviceId: string; skipped: string };

type DispatchKey = [jobId: string, deviceId: string];

export class JobStore {
  readonly #jobs: Database<JobRecord, string>;
  readonly #targets: Database<string[], string>;
  readonly #dispatch: Database<Dispatch, DispatchKey>;
  /** `jobId\0deviceId` → entry not committed yet. */
  readonly #overlay = new Map<string, Dispatch>();
  readonly #writes = new Set<Promise<unknown>>();

  constructor(root: RootDatabase) {
    this.#jobs = root.openDB<JobRecord, string>({ name: 'jobs' });
    this.#targets = root.openDB<string[], string>({ name: 'jobTargets' });
    this.#dispatch = root.openDB<Dispatch, DispatchKey>({ name: 'jobDispatch' });
  }

  /** The job and its targets, committed together before the rollout starts. */
  async create(job: JobRecord, targets: readonly string[]): Promise<void> {
    await Promise.all([this.#targets.put(job.id, [...targets]), this.#jobs.put(job.id, { ...job })]);
  }

  putJob(job: JobRecord): Promise<void> {
    return this.#track(this.#jobs.put(job.id, { ...job }));
  }

  *jobs(): IterableIterator<JobRecord> {
    for (const { value } of this.#jobs.getRange({})) yield value;
  }

  targets(jobId: string): string[] {
    return this.#targets.get(jobId) ?? [];
  }

  putDispatch(jobId: string, entry: Dispatch): Promise<void> {
    const overlayKey = `${jobId}\u0000${entry.deviceId}`;
    this.#overlay.set(overlayKey, entry);
    return this.#track(this.#dispatch.put([jobId, entry.deviceId], entry).finally(() => {
      if (this.#overlay.get(overlayKey) === entry) this.#overlay.delete(overlayKey);
    }));
  }

  /** What each target of the job got so far, by device id order. */
  *dispatches(jobId: string): IterableIterator<Dispatch> {
    const prefix = `${jobId}\u0000`;
    const seen = new Set<string>();
    for (const { value } of this.#dispatch.getRange({ start: [jobId], end: [jobId, '\uffff'] })) {
      const pending = this.#overlay.get(prefix + value.deviceId);
      seen.add(value.deviceId);
      yield pending ?? value;
    }
    for (const [key, entry] of this.#overlay) if (key.startsWith(prefix) && !seen.has(entry.deviceId)) yield entry;
  }

  /** Deletes a job with its targets and dispatch entries. */
  async remove(jobId: string): Promise<void> {
    const keys = [...this.#dispatch.getKeys({ start: [jobId], end: [jobId, '\uffff'] })];
    await Promise.all([this.#jobs.remove(jobId), this.#targets.remove(jobId), ...keys.map((key) => this.#dispatch.remove(key))]);
  }

  /** Resolves once every write issued so far has settled. */
  async flush(): Promise<void> {
    await Promise.allSettled([...this.#writes]);
  }

  #track(write: Promise<unknown>): Promise<void> {
    const tracked = write.then(() => undefined).finally(() => this.#writes.delete(tracked));
    this.#writes.add(tracked);
    return tracked;
  }
}
