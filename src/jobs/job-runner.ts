/**
 * Runs the fleet jobs' rollouts, on one node at a time: the holder of lease
 * `jobs` (with one process, that process). It takes up every unfinished job
 * when it gets the lease (counts rebuilt from what each target got, so a
 * runner that died mid-rollout is continued, not repeated), starts the
 * rollout of each job created anywhere (it watches the `jobs` bucket), counts
 * the jobs' commands from `command.status` events of every node, applies the
 * abort rule, ends jobs, and writes their counts into the job record at most
 * every PROGRESS_EVERY_MS, so every node reads the same progress.
 *
 * A job record changes under a revision check: when an operator cancels a
 * job on another node while this runner saves counts, the runner reads the
 * record again and follows the cancel.
 */
import type { LeaseTask } from '../cluster/leases.js';
import type { CommandService } from '../commands/command-service.js';
import type { CommandStatus, CommandView } from '../commands/types.js';
import { isPulsewireError } from '../errors/catalog.js';
import type { EventBus } from '../events/bus.js';
import type { DeviceRegistry } from '../registry/device-registry.js';
import type { Dispatch, JobRecord, JobStore } from './job-store.js';
import { JobProgress } from './progress.js';
import { Rollout } from './rollout.js';
import { isJobFinal, type JobStatus, type JobView } from './types.js';

export const PROGRESS_EVERY_MS = 250;
const PRUNE_EVERY_MS = 3600_000;

type Logger = { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };

type Job = {
  record: JobRecord;
  revision: number;
  progress: JobProgress;
  rollout?: Rollout;
  /** Every target was handed out or skipped. */
  rolledOut: boolean;
  lastEmitAt: number;
  emitTimer?: NodeJS.Timeout;
  /** Saves of the record, one after another. */
  saving: Promise<void>;
};

export type JobRunnerDeps = {
  store: JobStore; commands: CommandService; registry: DeviceRegistry; isOnline: (deviceId: string) => Promise<boolean>;
  bus: EventBus; logger: Logger; retentionMs: number; now?: () => number;
};

export class JobRunner implements LeaseTask {
  readonly #deps: JobRunnerDeps;
  readonly #now: () => number;
  readonly #jobs = new Map<string, Job>();
  readonly #pending = new Set<Promise<unknown>>();
  #unsubscribe: (() => void)[] = [];
  #pruneTimer: NodeJS.Timeout | undefined;
  #active = false;

  constructor(deps: JobRunnerDeps) {
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
  }

  /** Takes up every unfinished job and every job created from now on. */
  async acquired(): Promise<void> {
    const { store, bus } = this.#deps;
    this.#active = true;
    this.#unsubscribe.push(
      bus.on('command.status', ({ command, previous }) => this.#onCommand(command, previous)),
      store.watch((record, jobId) => this.#onJobWritten(record, jobId)),
    );
    let resumed = 0;
    for (const record of await store.jobs()) {
      if (!this.#active) return;
      if (isJobFinal(record.status) || this.#jobs.has(record.id)) continue;
      if (await this.#takeUp(record)) resumed++;
    }
    if (resumed > 0) this.#deps.logger.info({ jobs: resumed }, 'unfinished jobs resumed');
    this.#track(this.#prune());
    this.#pruneTimer = setInterval(() => this.#track(this.#prune()), PRUNE_EVERY_MS).unref();
  }

  lost(): void {
    this.#active = false;
    for (const off of this.#unsubscribe.splice(0)) off();
    clearInterval(this.#pruneTimer);
    for (const job of this.#jobs.values()) {
      job.rollout?.stop();
      clearTimeout(job.emitTimer);
    }
    this.#jobs.clear();
  }

  /** The job as this runner counts it right now (fresher than the stored counts), if it runs it. */
  view(jobId: string): JobView | undefined {
    const job = this.#jobs.get(jobId);
    return job && toView(job.record, job.progress);
  }

  /** Saves counts not written yet, then stops. */
  async close(): Promise<void> {
    for (const job of this.#jobs.values()) if (job.emitTimer) this.#track(this.#emitNow(job));
    const saves = [...this.#jobs.values()].map((job) => job.saving);
    this.lost();
    await Promise.allSettled([...this.#pending, ...saves]);
  }

  async #takeUp(record: JobRecord): Promise<boolean> {
    const stored = await this.#deps.store.get(record.id);
    if (!stored || isJobFinal(stored.record.status) || this.#jobs.has(record.id)) return false;
    // The creation's event (job-service.ts, as the job was stored) counts as the job's first: the next follows PROGRESS_EVERY_MS later.
    const job: Job = {
      record: stored.record, revision: stored.revision, progress: new JobProgress(), rolledOut: false, lastEmitAt: this.#now(), saving: Promise.resolve(),
    };
    this.#jobs.set(record.id, job);
    const served = await this.#reload(job);
    // The previous runner may have stopped between a failure and the abort it called for.
    this.#settle(job);
    if (!isJobFinal(job.record.status)) this.#startRollout(job, served);
    return true;
  }

  /** A job record was written somewhere: a new job to run, or one ended elsewhere (an operator's cancel). */
  #onJobWritten(record: JobRecord | undefined, jobId: string): void {
    if (!this.#active) return;
    const job = this.#jobs.get(jobId);
    if (!job) {
      if (record && !isJobFinal(record.status)) this.#track(this.#takeUp(record));
      return;
    }
    if (record && isJobFinal(record.status) && !isJobFinal(job.record.status)) this.#track(this.#followEnd(job, record));
  }

  /** Counts from the stored dispatches, with each command's current status; returns the devices served. */
  async #reload(job: Job): Promise<Set<string>> {
    const { store, commands } = this.#deps;
    const { id } = job.record;
    const served = new Set<string>();
    for (const entry of await store.dispatches(id)) {
      if ('skipped' in entry) {
        job.progress.skipped++;
        served.add(entry.deviceId);
        continue;
      }
      // A dispatching mark: the runner stopped between the mark and the command's creation, or just after.
      const command = 'commandId' in entry
        ? await commands.get(entry.deviceId, entry.commandId)
        : (await commands.list(entry.deviceId, undefined, Infinity)).find((c) => c.jobId === id);
      const status = command?.status ?? ('status' in entry ? entry.status : undefined);
      if (status === undefined) continue; // never created: the rollout gives it one now
      job.progress.apply(undefined, status);
      served.add(entry.deviceId);
      if (command && (!('status' in entry) || entry.status !== command.status)) {
        this.#track(store.putDispatch(id, { deviceId: entry.deviceId, commandId: command.id, status: command.status }));
      }
    }
    return served;
  }

  #startRollout(job: Job, served: ReadonlySet<string>): void {
    this.#track((async () => {
      const rollout = new Rollout({
        targets: await this.#deps.store.targets(job.record.id),
        served,
        perSecond: job.record.rolloutPerSecond,
        step: (deviceId) => this.#dispatch(job, deviceId),
      });
      if (isJobFinal(job.record.status) || !this.#active) return;
      job.rollout = rollout;
      if (!(await rollout.run())) return;
      job.rolledOut = true;
      this.#settle(job);
    })());
  }

  async #dispatch(job: Job, deviceId: string): Promise<'dispatched' | 'skipped'> {
    const { store, commands, registry, isOnline, logger } = this.#deps;
    const { id, target, command } = job.record;
    if (!(await registry.identity(deviceId))) return this.#skip(job, deviceId, 'device removed');
    if (target.onlineOnly && !(await isOnline(deviceId))) return this.#skip(job, deviceId, 'offline at its turn (onlineOnly)');
    await store.putDispatch(id, { deviceId, dispatching: true });
    try {
      await commands.create(deviceId, { ...command, jobId: id });
      return 'dispatched';
    } catch (err) {
      if (!isPulsewireError(err) || err.code !== 'PW_ERR_COMMAND_QUEUE_FULL') logger.warn({ err, jobId: id, deviceId }, 'job command not created');
      return this.#skip(job, deviceId, (err as Error).message);
    }
  }

  #skip(job: Job, deviceId: string, reason: string): 'skipped' {
    job.progress.skipped++;
    this.#track(this.#deps.store.putDispatch(job.record.id, { deviceId, skipped: reason }));
    this.#changed(job);
    return 'skipped';
  }

  #onCommand(command: CommandView, previous: CommandStatus | undefined): void {
    const job = command.jobId === undefined ? undefined : this.#jobs.get(command.jobId);
    if (!job) return;
    job.progress.apply(previous, command.status);
    const entry: Dispatch = { deviceId: command.deviceId, commandId: command.id, status: command.status };
    this.#track(this.#deps.store.putDispatch(job.record.id, entry));
    // Created while the job was being stopped (its create was awaiting the commit): it must not go out.
    if (previous === undefined && isJobFinal(job.record.status)) this.#track(this.#cancelQueued(job, [entry]));
    this.#settle(job);
    this.#changed(job);
  }

  /** Aborts the job when the failure rule says so, or completes it when nothing is left to happen. */
  #settle(job: Job): void {
    if (isJobFinal(job.record.status)) return;
    const abort = job.progress.abortReason(job.record);
    if (abort) this.#track(this.#end(job, 'aborted', abort));
    else if (job.rolledOut && job.progress.settled) this.#track(this.#end(job, 'completed', undefined));
  }

  async #end(job: Job, status: Exclude<JobStatus, 'in-progress'>, reason: string | undefined): Promise<void> {
    const { record } = job;
    Object.assign(record, { status, completedAt: this.#now() }, reason === undefined ? {} : { reason });
    job.rollout?.stop();
    const { dispatched, skipped, counts } = job.progress;
    this.#deps.logger.info({ jobId: record.id, status, reason, total: record.total, dispatched, skipped, counts }, `job ${status}`);
    const saved = this.#emitNow(job);
    if (status !== 'completed') await this.#cancelQueued(job, await this.#deps.store.dispatches(record.id));
    await saved;
  }

  /** Someone else ended the job (an operator's cancel on any node): stop, and make sure its queue is cancelled. */
  async #followEnd(job: Job, ended: JobRecord): Promise<void> {
    Object.assign(job.record, { status: ended.status, completedAt: ended.completedAt }, ended.reason === undefined ? {} : { reason: ended.reason });
    job.rollout?.stop();
    await this.#cancelQueued(job, await this.#deps.store.dispatches(job.record.id));
  }

  /** Cancels the job's commands that are still queued; ones already being sent run their course. */
  async #cancelQueued(job: Job, entries: Dispatch[]): Promise<void> {
    const why = `job ${job.record.id} ${job.record.status}`;
    await Promise.all(entries.flatMap((entry) => ('status' in entry && entry.status === 'queued'
      ? [this.#deps.commands.cancel(entry.deviceId, entry.commandId, why).catch((err: unknown) => {
          if (!isPulsewireError(err, 'PW_ERR_COMMAND_NOT_QUEUED')) this.#deps.logger.warn({ err, jobId: job.record.id }, 'job command not cancelled');
        })]
      : [])));
  }

  /** Counts changed: one event (and save) now if the last is old enough, else one when it is. */
  #changed(job: Job): void {
    if (job.emitTimer) return;
    const wait = job.lastEmitAt + PROGRESS_EVERY_MS - this.#now();
    if (wait <= 0) {
      this.#track(this.#emitNow(job));
      return;
    }
    job.emitTimer = setTimeout(() => this.#track(this.#emitNow(job)), wait);
    job.emitTimer.unref();
  }

  /** Saves the record with its counts, then tells the bus; resolves once saved. */
  #emitNow(job: Job): Promise<void> {
    clearTimeout(job.emitTimer);
    job.emitTimer = undefined;
    job.lastEmitAt = this.#now();
    const save = job.saving.then(() => this.#save(job));
    job.saving = save.catch(() => undefined);
    this.#deps.bus.emit('job.progress', { job: toView(job.record, job.progress) });
    return save;
  }

  /** Writes the record under its revision; after a lost race, follows a final status written elsewhere. */
  async #save(job: Job): Promise<void> {
    const { store } = this.#deps;
    for (;;) {
      const { dispatched, skipped, counts } = job.progress;
      const record: JobRecord = { ...job.record, progress: { dispatched, skipped, counts: { ...counts } } };
      const revision = await store.update(record, job.revision);
      if (revision !== undefined) {
        job.revision = revision;
        return;
      }
      const stored = await store.get(job.record.id);
      if (!stored) return; // pruned
      job.revision = stored.revision;
      if (isJobFinal(stored.record.status) && stored.record.status !== job.record.status) {
        await this.#followEnd(job, stored.record);
      }
    }
  }

  async #prune(): Promise<void> {
    const { store, retentionMs } = this.#deps;
    const before = this.#now() - retentionMs;
    for (const record of await store.jobs()) {
      if (!isJobFinal(record.status) || (record.completedAt ?? record.createdAt) >= before) continue;
      this.#jobs.delete(record.id);
      await store.remove(record.id);
    }
  }

  #track(work: Promise<unknown>): void {
    const tracked = work.catch((err: unknown) => this.#deps.logger.warn({ err }, 'job bookkeeping failed')).finally(() => this.#pending.delete(tracked));
    this.#pending.add(tracked);
  }
}

/** The API's view: the record with counts (the runner's live ones, else the stored ones). */
export function toView(record: JobRecord, progress: JobProgress | undefined): JobView {
  const { createdAt, completedAt, progress: stored, ...rest } = record;
  const counts = progress ?? stored;
  return {
    ...rest,
    dispatched: counts?.dispatched ?? 0,
    skipped: counts?.skipped ?? 0,
    counts: { ...(counts?.counts ?? {}) },
    createdAt: new Date(createdAt).toISOString(),
    ...(completedAt === undefined ? {} : { completedAt: new Date(completedAt).toISOString() }),
  };
}
