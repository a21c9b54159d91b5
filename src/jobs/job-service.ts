/**
 * Fleet jobs (issue 6, like AWS IoT Jobs): one command for many devices,
 * rolled out at a bounded rate through the CommandService (so queueing, TTL,
 * timeout, at-most-once delivery and `command` points apply to each), with
 * progress counted from `command.status` events, an abort threshold, and
 * cancellation (docs/jobs.md).
 *
 * This is the operators' side, served by every node from the store: create,
 * read, list, cancel. The rollouts themselves run on one node at a time
 * (job-runner.ts, under a lease); a job created here is picked up by that
 * runner through the store, wherever it runs.
 */
import { randomBytes } from 'node:crypto';
import type { CommandService } from '../commands/command-service.js';
import type { CommandStatus, CommandView } from '../commands/types.js';
import { isPulsewireError, PulsewireError } from '../errors/catalog.js';
import type { EventBus } from '../events/bus.js';
import type { DeviceRegistry } from '../registry/device-registry.js';
import { toView, type JobRunner } from './job-runner.js';
import type { JobRecord, JobStore } from './job-store.js';
import { resolveTargets } from './selector.js';
import { isJobFinal, JOB_DEFAULTS, type JobStatus, type JobView, type NewJob } from './types.js';

type Logger = { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };

export class JobService {
  readonly #store: JobStore;
  readonly #commands: CommandService;
  readonly #registry: DeviceRegistry;
  readonly #bus: EventBus;
  readonly #log: Logger;
  readonly #now: () => number;
  /** This node's runner: when it runs a job, its counts are fresher than the stored ones. */
  readonly #runner: JobRunner | undefined;

  constructor(deps: { store: JobStore; commands: CommandService; registry: DeviceRegistry; bus: EventBus; logger: Logger; now?: () => number; runner?: JobRunner }) {
    this.#store = deps.store;
    this.#commands = deps.commands;
    this.#registry = deps.registry;
    this.#bus = deps.bus;
    this.#log = deps.logger;
    this.#now = deps.now ?? Date.now;
    this.#runner = deps.runner;
  }

  async create(request: NewJob): Promise<JobView> {
    this.#commands.check(request.command);
    const targets = await resolveTargets(this.#registry, request.target);
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
    this.#log.info({ jobId: record.id, name: record.command.name, total: record.total, rolloutPerSecond: record.rolloutPerSecond }, 'job created');
    const view = toView(record, undefined);
    this.#bus.emit('job.progress', { job: view });
    return view;
  }

  async get(jobId: string): Promise<JobView> {
    const running = this.#runner?.view(jobId);
    if (running) return running;
    const stored = await this.#store.get(jobId);
    if (!stored) throw new PulsewireError('PW_ERR_JOB_NOT_FOUND', jobId);
    return toView(stored.record, undefined);
  }

  /** Newest first. */
  async list(status: JobStatus | undefined, limit: number): Promise<JobView[]> {
    const records = (await this.#store.jobs()).filter((job) => status === undefined || job.status === status);
    records.sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1));
    return records.slice(0, limit).map((record) => this.#runner?.view(record.id) ?? toView(record, undefined));
  }

  /** The job's commands in device id order, as they are now. */
  async commandsOf(jobId: string, status: CommandStatus | undefined, limit: number): Promise<CommandView[]> {
    await this.#existing(jobId);
    const out: CommandView[] = [];
    for (const entry of await this.#store.dispatches(jobId)) {
      if (!('commandId' in entry)) continue;
      const view = await this.#commands.get(entry.deviceId, entry.commandId);
      if (!view || (status !== undefined && view.status !== status)) continue;
      out.push(view);
      if (out.length >= limit) break;
    }
    return out;
  }

  /** Targets that got no command, with the reason. */
  async skippedOf(jobId: string, limit: number): Promise<{ deviceId: string; reason: string }[]> {
    await this.#existing(jobId);
    const out: { deviceId: string; reason: string }[] = [];
    for (const entry of await this.#store.dispatches(jobId)) {
      if ('skipped' in entry) out.push({ deviceId: entry.deviceId, reason: entry.skipped });
      if (out.length >= limit) break;
    }
    return out;
  }

  /**
   * Ends the job as cancelled (a revision-checked update, so a runner ending it
   * at the same moment cannot both win) and cancels its commands still queued;
   * the runner, wherever it is, stops the rollout when it sees the record.
   */
  async cancel(jobId: string): Promise<JobView> {
    for (;;) {
      const stored = await this.#existing(jobId);
      const { record, revision } = stored;
      if (isJobFinal(record.status)) throw new PulsewireError('PW_ERR_JOB_FINISHED', `${jobId} is ${record.status}`);
      const running = this.#runner?.view(jobId);
      const progress = running ? { dispatched: running.dispatched, skipped: running.skipped, counts: running.counts } : record.progress;
      const cancelled: JobRecord = {
        ...record, status: 'cancelled', completedAt: this.#now(), reason: 'cancelled by operator', ...(progress ? { progress } : {}),
      };
      if ((await this.#store.update(cancelled, revision)) === undefined) continue;
      this.#log.info({ jobId, status: 'cancelled', reason: cancelled.reason, total: record.total }, 'job cancelled');
      await this.#cancelQueued(jobId);
      const view = this.#runner?.view(jobId) ?? toView(cancelled, undefined);
      const shown = { ...view, status: cancelled.status, completedAt: new Date(cancelled.completedAt!).toISOString(), reason: cancelled.reason! };
      this.#bus.emit('job.progress', { job: shown });
      return shown;
    }
  }

  async #existing(jobId: string): Promise<{ record: JobRecord; revision: number }> {
    const stored = await this.#store.get(jobId);
    if (!stored) throw new PulsewireError('PW_ERR_JOB_NOT_FOUND', jobId);
    return stored;
  }

  async #cancelQueued(jobId: string): Promise<void> {
    const why = `job ${jobId} cancelled`;
    await Promise.all((await this.#store.dispatches(jobId)).flatMap((entry) => ('commandId' in entry
      ? [this.#commands.cancel(entry.deviceId, entry.commandId, why).catch((err: unknown) => {
          if (!isPulsewireError(err, 'PW_ERR_COMMAND_NOT_QUEUED')) this.#log.warn({ err, jobId }, 'job command not cancelled');
        })]
      : [])));
  }
}
