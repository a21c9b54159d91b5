/**
 * Command deadlines: a queued command expires when its TTL ends, a sent one
 * times out when no final RESULT came within its timeout. One node keeps the
 * timers for every unfinished command (the holder of lease
 * `command-deadlines`; with one process, that process): it arms them from
 * the store when it takes the lease, and from `command.status` events (this
 * node's and, through the cluster bridge, every other's) afterwards. Firing
 * is a revision-checked transition in the service, so a RESULT that beat the
 * timer wins and the timer does nothing.
 *
 * The same holder prunes finished commands past their retention, hourly.
 */
import type { EventBus } from '../events/bus.js';
import type { LeaseTask } from '../cluster/leases.js';
import type { CommandRecord } from './command-store.js';
import { isFinal, type CommandService } from './command-service.js';
import { atDeadline, type Deadline, type Scheduler } from './deadline.js';

type Logger = { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };

/** Finished commands older than the retention are deleted when the lease is taken and then this often (docs/protocol.md). */
export const PRUNE_EVERY_MS = 3_600_000;
/** A command being written by a live node is looked at again this soon (the write decides its fate). */
const SENDING_RECHECK_MS = 50;

export class CommandDeadlines implements LeaseTask {
  readonly #service: CommandService;
  readonly #bus: EventBus;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #isNodeAlive: (node: string | undefined) => boolean;
  readonly #timers = new Map<string, Deadline>();
  readonly #pruneScheduler: Scheduler;
  #unsubscribe: (() => void) | undefined;
  #pruneTimer: NodeJS.Timeout | undefined;
  #active = false;

  constructor(deps: {
    service: CommandService; bus: EventBus; logger: Logger; now?: () => number; isNodeAlive: (node: string | undefined) => boolean;
    /** Where the hourly prune is scheduled (tests run it by hand). */
    pruneScheduler?: Scheduler;
  }) {
    this.#pruneScheduler = deps.pruneScheduler ?? globalThis;
    this.#service = deps.service;
    this.#bus = deps.bus;
    this.#log = deps.logger;
    this.#now = deps.now ?? Date.now;
    this.#isNodeAlive = deps.isNodeAlive;
  }

  /** Arms every unfinished command's deadline; what ran out while nobody watched ends now. */
  async acquired(): Promise<void> {
    this.#active = true;
    this.#unsubscribe = this.#bus.on('command.status', ({ command }) => {
      if (isFinal(command.status)) this.#disarm(command.id);
      else this.#arm(command.deviceId, command.id, deadlineOf(command.status, Date.parse(command.createdAt), command.sentAt ? Date.parse(command.sentAt) : undefined, command));
    });
    // Final commands a crash (or an earlier version, which kept them in one bucket) left among the unfinished ones.
    const settled = await this.#service.store.settleFinished();
    if (settled > 0) this.#log.info({ commands: settled }, 'finished commands moved out of the queues');
    let restored = 0;
    let maybeSent = 0;
    for await (const record of this.#service.store.unfinished()) {
      if (!this.#active) return;
      if (record.status === 'queued' && record.sendingAt !== undefined && !this.#isNodeAlive(record.sendingBy)) maybeSent++;
      this.#arm(record.deviceId, record.id, recordDeadline(record));
      restored++;
    }
    if (restored > 0) this.#log.info({ commands: restored }, 'deadlines of unfinished commands armed');
    if (maybeSent > 0) this.#log.warn({ commands: maybeSent }, 'commands being sent when their hub stopped count as sent (at most once); they time out unless the device answers');
    this.#prune();
  }

  /** Deletes finished commands past the retention, then schedules the next prune. */
  #prune(): void {
    if (!this.#active) return;
    const { commandRetentionMs } = this.#service.limits;
    void this.#service.store.prune(this.#now() - commandRetentionMs).then((n) => {
      if (n > 0) this.#log.info({ commands: n, retentionMs: commandRetentionMs }, 'finished commands pruned');
    }, (err: unknown) => this.#log.warn({ err }, 'finished commands not pruned'));
    this.#pruneTimer = this.#pruneScheduler.setTimeout(() => this.#prune(), PRUNE_EVERY_MS);
    this.#pruneTimer.unref?.();
  }

  lost(): void {
    this.#active = false;
    this.#unsubscribe?.();
    this.#pruneScheduler.clearTimeout(this.#pruneTimer);
    for (const timer of this.#timers.values()) timer.cancel();
    this.#timers.clear();
  }

  /** Timers armed (metrics, tests). */
  get armed(): number {
    return this.#timers.size;
  }

  #arm(deviceId: string, commandId: string, deadlineMs: number): void {
    if (!this.#active) return;
    this.#timers.get(commandId)?.cancel();
    this.#timers.set(commandId, atDeadline(deadlineMs, () => {
      this.#timers.delete(commandId);
      void this.#service.expire(deviceId, commandId, this.#isNodeAlive).then((still) => {
        // Not over yet (being written, or its clock moved on): look again at its next deadline.
        if (still && !isFinal(still.status) && !this.#timers.has(commandId)) {
          const next = still.status === 'queued' && still.sendingAt !== undefined ? this.#now() + SENDING_RECHECK_MS : recordDeadline(still);
          this.#arm(deviceId, commandId, next);
        }
      }, (err: unknown) => {
        this.#log.warn({ err, deviceId, commandId }, 'command deadline not applied; retried');
        this.#arm(deviceId, commandId, this.#now() + 1000);
      });
    }, this.#now));
  }

  #disarm(commandId: string): void {
    this.#timers.get(commandId)?.cancel();
    this.#timers.delete(commandId);
  }
}

/** TTL while queued (a sending mark makes it look at once), timeout once sent. */
function recordDeadline(record: CommandRecord): number {
  if (record.status === 'queued' && record.sendingAt !== undefined) return record.sendingAt;
  return deadlineOf(record.status, record.createdAt, record.sentAt, record);
}

function deadlineOf(status: string, createdAt: number, sentAt: number | undefined, limits: { ttlMs: number; timeoutMs: number }): number {
  return status === 'sent' || status === 'received' ? sentAt! + limits.timeoutMs : createdAt + limits.ttlMs;
}
