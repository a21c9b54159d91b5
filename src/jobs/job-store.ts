/**
 * Durable home of fleet jobs: bucket `jobs` (each job's definition, status
 * and its latest progress counts), `job-targets` (the device list fixed at
 * creation, in chunks keyed [jobId, chunk], since a NATS message is at most
 * 1 MB) and `jobDispatch`, keyed [jobId, deviceId], saying what each target
 * got: a command (with its latest status) or a skip.
 *
 * A `dispatching` mark is written before the command is created, so a crash
 * between the two leaves a trace the next runner resolves against the
 * device's commands instead of giving the device a second one. The mark is
 * awaited before the command is created: with one process they used to
 * share an lmdb commit, across nodes nothing orders them but the await.
 */
import { collect, type Bucket } from '../stores/bucket.js';
import type { CommandStatus } from '../commands/types.js';
import type { JobView } from './types.js';

export type JobProgressCounts = Pick<JobView, 'dispatched' | 'skipped' | 'counts'>;

/** A job as stored: its view with times as epoch milliseconds, and its counts as last written by its runner. */
export type JobRecord = Omit<JobView, 'dispatched' | 'skipped' | 'counts' | 'createdAt' | 'completedAt'> & {
  createdAt: number;
  completedAt?: number;
  progress?: JobProgressCounts;
};

export type Dispatch =
  | { deviceId: string; dispatching: true }
  | { deviceId: string; commandId: string; status: CommandStatus }
  | { deviceId: string; skipped: string };

/** Device ids per chunk of a target list: 10,000 ids of 64 characters stay well under NATS's 1 MB. */
export const TARGETS_PER_CHUNK = 5000;

export const chunkKey = (jobId: string, chunk: number): [string, string] => [jobId, String(chunk).padStart(6, '0')];

export type JobBuckets = { jobs: Bucket<JobRecord>; jobTargets: Bucket<string[]>; jobDispatch: Bucket<Dispatch> };

export class JobStore {
  readonly #jobs: Bucket<JobRecord>;
  readonly #targets: Bucket<string[]>;
  readonly #dispatch: Bucket<Dispatch>;

  constructor(buckets: JobBuckets) {
    this.#jobs = buckets.jobs;
    this.#targets = buckets.jobTargets;
    this.#dispatch = buckets.jobDispatch;
  }

  /** The targets first, then the job: a runner that sees the job finds its whole list. */
  async create(job: JobRecord, targets: readonly string[]): Promise<void> {
    const chunks: Promise<unknown>[] = [];
    for (let i = 0; i * TARGETS_PER_CHUNK < targets.length; i++) {
      chunks.push(this.#targets.put(chunkKey(job.id, i), targets.slice(i * TARGETS_PER_CHUNK, (i + 1) * TARGETS_PER_CHUNK)));
    }
    await Promise.all(chunks);
    if ((await this.#jobs.create(job.id, job)) === undefined) throw new Error(`job ${job.id} exists already`);
  }

  async get(jobId: string): Promise<{ record: JobRecord; revision: number } | undefined> {
    const entry = await this.#jobs.get(jobId);
    return entry && { record: entry.value, revision: entry.revision };
  }

  /** Replaces the job if it is still at `revision`; false when someone changed it first. */
  async update(job: JobRecord, revision: number): Promise<number | undefined> {
    return this.#jobs.update(job.id, job, revision);
  }

  async jobs(): Promise<JobRecord[]> {
    return (await collect(this.#jobs.entries())).map((entry) => entry.value);
  }

  /** Calls `listener` with each job written, by this node or any other. */
  watch(listener: (job: JobRecord | undefined, jobId: string) => void): () => void {
    return this.#jobs.watch((change) => listener(change.value, change.key as string));
  }

  async targets(jobId: string): Promise<string[]> {
    return (await collect(this.#targets.entries({ group: jobId }))).flatMap((entry) => entry.value);
  }

  putDispatch(jobId: string, entry: Dispatch): Promise<number> {
    return this.#dispatch.put([jobId, entry.deviceId], entry);
  }

  /** What each target of the job got so far, by device id order. */
  async dispatches(jobId: string): Promise<Dispatch[]> {
    return (await collect(this.#dispatch.entries({ group: jobId }))).map((entry) => entry.value);
  }

  /** Deletes a job with its targets and dispatch entries. */
  async remove(jobId: string): Promise<void> {
    const parts = await collect(this.#targets.entries({ group: jobId }));
    const dispatch = await collect(this.#dispatch.entries({ group: jobId }));
    await Promise.all([
      this.#jobs.delete(jobId),
      ...parts.map((entry) => this.#targets.delete(entry.key)),
      ...dispatch.map((entry) => this.#dispatch.delete(entry.key)),
    ]);
  }

  /** Resolves once every write issued so far has settled. */
  async flush(): Promise<void> {
    await Promise.all([this.#jobs.flush(), this.#targets.flush(), this.#dispatch.flush()]);
  }
}
