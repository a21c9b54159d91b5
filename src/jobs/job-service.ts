/**
 * Fleet jobs (issue 6, like AWS IoT Jobs): one command for many devices,
 * rolled out at a bounded rate through the CommandService (so queueing, TTL,
 * timeout, at-most-once delivery and `command` points apply to each), with
 * progress counted from `command.status` events, an abort threshold, and
 * cancellation. Progress goes out as `job.progress` events: at most one per
 * PROGRESS_EVERY_MS per job, plus one at every job status change.
 *
 * Restart: the job, its targets and what each target got are in the store;
 * counts are rebuilt from the stored commands and the rollout continues with
 * the devices that got nothing yet (docs/jobs.md).
 */
import { randomBytes } from 'node:crypto';
import type { CommandService } from '../commands/command-service.js';
import type { CommandStatus, CommandView } from '../commands/types.js';
import { isPulsewireError, PulsewireError } from '../errors/catalog.js';
import type { EventBus } from '../events/bus.js';
import type { DeviceRegistry } from '../registry/device-registry.js';
import type { Dispatch, JobRecord, JobStore } from './job-store.js';
import { JobProgress } from './progress.js';
import { Rollout } from './rollout.js';
import { resolveTargets } from './selector.js';
import { isJobFinal, JOB_DEFAULTS, type JobStatus, type JobView, type NewJob } from './types.js';

export const PROGRESS_EVERY_MS = 250;
const PRUNE_EVERY_MS = 3600_000;

type Logger = { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };

type Job = {
  record: JobRecord;
  progress: JobProgress;
  rollout?: Rollout;
  /** Every target was handed out or skipped. */
  rolledOut: boolean;
  lastEmitAt: number;
  emitTimer?: NodeJS.Timeout;
};

export class JobService {
  readonly #store: JobStore;
  readonly #commands: CommandService;
  readonly #registry: DeviceRegistry;
  readonly #isOnline: (deviceId: string) => boolean;
  readonly #bus: EventBus;
  readonly #log: Logger;
  readonly #retentionMs: number;
  readonly #now: () => number;
  readonly #jobs = new Map<string, Job>();
  readonly #pending = new Set<Promise<unknown>>();
  #unsubscribe: (() => void) | undefined;
  #pruneTimer: NodeJS.Timeout | undefined;

  constructor(deps: {
    store: JobStore; commands: CommandService; registry: DeviceRegistry; isOnline: (deviceId: string) => boolean;
    bus: EventBus; logger: Logger; retentionMs: number; now?: () => number;
  }) {
    this.#store = deps.store;
    this.#commands = deps.commands;
    this.#registry = deps.registry;
    this.#isOnline = deps.isOnline;
    this.#bus = deps.bus;
    this.#log = deps.logger;
    this.#retentionMs = deps.retentionMs;
    this.#now = deps.now ?? Date.now;
  }

  /** Reloads every job, rebuilds its counts and resumes unfinished rollouts. Call after CommandService.start(). */
  start(): void {
    this.#unsubscribe = this.#bus.on('command.status', ({ command, previous }) => this.#onCommand(command, previous));
    let resumed = 0;
    for (const record of this.#store.jobs()) {
      const job: Job = { record, progress: new JobProgress(), rolledOut: isJobFinal(record.status), lastEmitAt: 0 };
      this.#jobs.set(record.id, job);
      const served = this.#reload(job);
      if (isJobFinal(record.status)) continue;
      // The hub may have stopped between a failure and the abort it called for.
      this.#settle(job);
      if (isJobFinal(record.status)) continue;
      this.#startRollout(job, served);
      resumed++;
    }
    if (resumed > 0) this.#log.info({ jobs: resumed }, 'unfinished jobs resumed');
    this.#prune();
    this.#pruneTimer = setInterval(() => this.#prune(), PRUNE_EVERY_MS).unref();
  }

  async create(request: NewJob): Promise<JobView> {
    this.#commands.check(request.command);
    const targets = resolveTargets(this.#registry, request.target);
    const record: JobRecord = {
      id: `j${this.#now().toString(36).padStart(9, '0')}${randomBytes(4).toString('hex')}`,
      status: 'in-progress',
      command: request.command,
      target: request.target,
      rolloutPerSecond: request.rolloutPerSecond ?? JOB_DEFAULTS.rolloutPerSecond,
      abortThresholdPct: request.abortThresholdPct ?? JOB_DEFAULTS.abortThresholdPct,
      abortMinFinished: request.abortMinFinished ?? JOB_DEFAULTS.abortMinFinished,
      total: targets.length,
      createdAt: this.#now(),
    };
    await this.#store.create(record, targets);
    const job: Job = { record, progress: new JobProgress(), rolledOut: false, lastEmitAt: 0 };
    this.#jobs.set(record.id, job);
    this.#log.info({ jobId: record.id, name: record.command.name, total: record.total, rolloutPerSecond: record.rolloutPerSecond }, 'job created');
    this.#emitNow(job);
    this.#startRollout(job, new Set());
    return toView(job);
  }

  get(jobId: string): JobView {
    return toView(this.#job(jobId));
  }

  /** Newest first. */
  list(status: JobStatus | undefined, limit: number): JobView[] {
    const jobs = [...this.#jobs.values()].filter((job) => status === undefined || job.record.status === status);
    jobs.sort((a, b) => b.record.createdAt - a.record.createdAt || (a.record.id < b.record.id ? 1 : -1));
    return jobs.slice(0, limit).map(toView);
  }

  /** The job's commands in device id order, as they are now. */
  commandsOf(jobId: string, status: CommandStatus | undefined, limit: number): CommandView[] {
    this.#job(jobId);
    const out: CommandView[] = [];
    for (const entry of this.#store.dispatches(jobId)) {
      if (!('commandId' in entry)) continue;
      const view = this.#commands.get(entry.deviceId, entry.commandId);
      if (!view || (status !== undefined && view.status !== status)) continue;
      out.push(view);
      if (out.length >= limit) break;
    }
    return out;
  }

  /** Targets that got no command, with the reason. */
  skippedOf(jobId: string, limit: number): { deviceId: string; reason: string }[] {
    this.#job(jobId);
    const out: { deviceId: string; reason: string }[] = [];
    for (const entry of this.#store.dispatches(jobId)) {
      if ('skipped' in entry) out.push({ deviceId: entry.deviceId, reason: entry.skipped });
      if (out.length >= limit) break;
    }
    return out;
  }

  async cancel(jobId: string): Promise<JobView> {
    const job = this.#job(jobId);
    if (isJobFinal(job.record.status)) throw new PulsewireError('PW_ERR_JOB_FINISHED', `${jobId} is ${job.record.status}`);
    await this.#end(job, 'cancelled', 'cancelled by operator');
    return toView(job);
  }

  async close(): Promise<void> {
    this.#unsubscribe?.();
    clearInterval(this.#pruneTimer);
    for (const job of this.#jobs.values()) {
      job.rollout?.stop();
      clearTimeout(job.emitTimer);
    }
    await Promise.allSettled([...this.#pending]);
    await this.#store.flush();
  }

  #job(jobId: string): Job {
    const job = this.#jobs.get(jobId);
    if (!job) throw new PulsewireError('PW_ERR_JOB_NOT_FOUND', jobId);
    return job;
  }

  /** Counts from the stored dispatches, with each command's current status; returns the devices served. */
  #reload(job: Job): Set<string> {
    const { id } = job.record;
    const served = new Set<string>();
    for (const entry of this.#store.dispatches(id)) {
      if ('skipped' in entry) {
        job.progress.skipped++;
        served.add(entry.deviceId);
        continue;
      }
      // A dispatching mark: the hub stopped between the mark and the command's creation, or just after.
      const command = 'commandId' in entry
        ? this.#commands.get(entry.deviceId, entry.commandId)
        : this.#commands.list(entry.deviceId, undefined, Infinity).find((c) => c.jobId === id);
      const status = command?.status ?? ('status' in entry ? entry.status : undefined);
      if (status === undefined) continue; // never created: the rollout gives it one now
      job.progress.apply(undefined, status);
      served.add(entry.deviceId);
      if (command && (!('status' in entry) || entry.status !== command.status)) {
        this.#track(this.#store.putDispatch(id, { deviceId: entry.deviceId, commandId: command.id, status: command.status }));
      }
    }
    return served;
  }

  #startRollout(job: Job, served: ReadonlySet<string>): void {
    const rollout = new Rollout({
      targets: this.#store.targets(job.record.id),
      served,
      perSecond: job.record.rolloutPerSecond,
      step: (deviceId) => this.#dispatch(job, deviceId),
    });
    job.rollout = rollout;
    this.#track(rollout.run().then((done) => {
      if (!done) return;
      job.rolledOut = true;
      this.#settle(job);
    }));
  }

  async #dispatch(job: Job, deviceId: string): Promise<'dispatched' | 'skipped'> {
    const { id, target, command } = job.record;
    if (!this.#registry.get(deviceId)) return this.#skip(job, deviceId, 'device removed');
    if (target.onlineOnly && !this.#isOnline(deviceId)) return this.#skip(job, deviceId, 'offline at its turn (onlineOnly)');
    // Same lmdb environment as the commands: this mark commits no later than the command.
    this.#track(this.#store.putDispatch(id, { deviceId, dispatching: true }));
    try {
      await this.#commands.create(deviceId, { ...command, jobId: id });
      return 'dispatched';
    } catch (err) {
      if (!isPulsewireError(err) || err.code !== 'PW_ERR_COMMAND_QUEUE_FULL') this.#log.warn({ err, jobId: id, deviceId }, 'job command not created');
      return this.#skip(job, deviceId, (err as Error).message);
    }
  }

  #skip(job: Job, deviceId: string, reason: string): 'skipped' {
    job.progress.skipped++;
    this.#track(this.#store.putDispatch(job.record.id, { deviceId, skipped: reason }));
    this.#changed(job);
    return 'skipped';
  }

  #onCommand(command: CommandView, previous: CommandStatus | undefined): void {
    const job = command.jobId === undefined ? undefined : this.#jobs.get(command.jobId);
    if (!job) return;
    job.progress.apply(previous, command.status);
    const entry: Dispatch = { deviceId: command.deviceId, commandId: command.id, status: command.status };
    this.#track(this.#store.putDispatch(job.record.id, entry));
    // Created while the job was being stopped (its create was awaiting the commit): it must not go out.
    if (previous === undefined && isJobFinal(job.record.status)) this.#cancelQueued(job, [entry]);
    this.#settle(job);
    this.#changed(job);
  }

  /** Aborts the job when the failure rule says so, or completes it when nothing is left to happen. */
  #settle(job: Job): void {
    if (isJobFinal(job.record.status)) return;
    const abort = job.progress.abortReason(job.record);
    if (abort) void this.#end(job, 'aborted', abort);
    else if (job.rolledOut && job.progress.settled) void this.#end(job, 'completed', undefined);
  }

  async #end(job: Job, status: Exclude<JobStatus, 'in-progress'>, reason: string | undefined): Promise<void> {
    const { record } = job;
    Object.assign(record, { status, completedAt: this.#now() }, reason === undefined ? {} : { reason });
    job.rollout?.stop();
    const write = this.#store.putJob(record);
    this.#track(write);
    const { dispatched, skipped, counts } = job.progress;
    this.#log.info({ jobId: record.id, status, reason, total: record.total, dispatched, skipped, counts }, `job ${status}`);
    this.#emitNow(job);
    if (status !== 'completed') await this.#cancelQueued(job, [...this.#store.dispatches(record.id)]);
    await write.catch(() => undefined);
  }

  /** Cancels the job's commands that are still queued; ones already being sent run their course. */
  async #cancelQueued(job: Job, entries: Dispatch[]): Promise<void> {
    const why = `job ${job.record.id} ${job.record.status}`;
    const cancels = entries.flatMap((entry) => ('status' in entry && entry.status === 'queued'
      ? [this.#commands.cancel(entry.deviceId, entry.commandId, why).catch((err: unknown) => {
          if (!isPulsewireError(err, 'PW_ERR_COMMAND_NOT_QUEUED')) this.#log.warn({ err, jobId: job.record.id }, 'job command not cancelled');
        })]
      : []));
    await Promise.all(cancels);
  }

  /** Counts changed: one event now if the last is old enough, else one when it is. */
  #changed(job: Job): void {
    if (job.emitTimer) return;
    const wait = job.lastEmitAt + PROGRESS_EVERY_MS - this.#now();
    if (wait <= 0) return this.#emitNow(job);
    job.emitTimer = setTimeout(() => this.#emitNow(job), wait);
    job.emitTimer.unref();
  }

  #emitNow(job: Job): void {
    clearTimeout(job.emitTimer);
    job.emitTimer = undefined;
    job.lastEmitAt = this.#now();
    this.#bus.emit('job.progress', { job: toView(job) });
  }

  #prune(): void {
    const before = this.#now() - this.#retentionMs;
    for (const job of [...this.#jobs.values()]) {
      if (!isJobFinal(job.record.status) || (job.record.completedAt ?? job.record.createdAt) >= before) continue;
      this.#jobs.delete(job.record.id);
      this.#track(this.#store.remove(job.record.id));
    }
  }

  #track(work: Promise<unknown>): void {
    const tracked = work.catch((err: unknown) => this.#log.warn({ err }, 'job bookkeeping failed')).finally(() => this.#pending.delete(tracked));
    this.#pending.add(tracked);
  }
}

function toView(job: Job): JobView {
  const { record, progress } = job;
  const { createdAt, completedAt, ...rest } = record;
  return {
    ...rest,
    dispatched: progress.dispatched,
    skipped: progress.skipped,
    counts: { ...progress.counts },
    createdAt: new Date(createdAt).toISOString(),
    ...(completedAt === undefined ? {} : { completedAt: new Date(completedAt).toISOString() }),
  };
}
