/**
 * Commands from operators to devices (protocol section 3, COMMAND/RESULT):
 * creation with limits, the per-device queue, the state machine, TTL and
 * timeout, results, cancellation, waiting for a final state, and one
 * `command.status` event per change. Delivery over a device's connection is
 * the outbox's job (outbox.ts); it asks this service what is queued and
 * reports back what was written.
 *
 * Delivery is at most once: a command whose connection dropped after it was
 * written, or may have been written, is not sent again (a "reboot" must not
 * run twice); it times out. Only a command whose frame certainly never left
 * goes back to the queue in its place (the outcome is per frame). The hub
 * itself may die between writing a frame and committing "sent", so a
 * "sending" mark is committed before the write; a command found with one at
 * start-up counts as sent at that time (it times out unless its RESULT
 * comes), never as queued. A final status is shown, emitted and answered
 * only once committed (#finish), so a crash takes back none an operator saw.
 */
import { randomBytes } from 'node:crypto';
import { PulsewireError } from '../errors/catalog.js';
import type { EventBus } from '../events/bus.js';
import { receiptClock } from '../gateway/receipt-clock.js';
import { encodeCommand } from '../protocol/encode.js';
import { cborToJson, JsonCborError, jsonToCbor } from '../protocol/json-cbor.js';
import type { ResultMessage } from '../protocol/messages.js';
import { commandPoint } from '../storage/schema.js';
import type { JsonValue } from '../state/types.js';
import type { CommandRecord, CommandStore } from './command-store.js';
import { atDeadline, type Deadline, type Scheduler } from './deadline.js';
import { FINAL_COMMAND_STATUSES, type CommandStatus, type CommandView } from './types.js';

export type CommandLimits = {
  commandQueueMax: number;
  commandTtlMs: number;
  commandTimeoutMs: number;
  commandRetentionMs: number;
  maxMessageBytes: number;
};

type Logger = { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
type PointSink = { append(deviceId: string, points: ReturnType<typeof commandPoint>[]): Promise<void> };

export type NewCommand = { name: string; args?: JsonValue; ttlMs?: number; timeoutMs?: number; jobId?: string };

/** Finished commands older than the retention are deleted at start and then this often (docs/protocol.md). */
export const PRUNE_EVERY_MS = 3_600_000;

/** Length of every id #newId makes: `c`, 11 base-36 digits of the µs clock, 6 hex digits (docs/protocol.md). */
export const COMMAND_ID_LENGTH = 18;

const RESULT_STATUS: Record<number, CommandStatus> = { 0: 'received', 1: 'succeeded', 2: 'failed', 3: 'rejected' };
export const isFinal = (status: CommandStatus): boolean => FINAL_COMMAND_STATUSES.has(status);

export class CommandService {
  readonly #store: CommandStore;
  readonly #bus: EventBus;
  readonly #limits: CommandLimits;
  readonly #points: PointSink;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #pointClock = receiptClock();
  /** Unfinished commands by device, in queue order: the source of truth while the hub runs. */
  readonly #active = new Map<string, Map<string, CommandRecord>>();
  /** Commands handed to a connection whose write has not completed yet. */
  readonly #inFlight = new Set<string>();
  readonly #timers = new Map<string, Deadline>();
  readonly #waiters = new Map<string, Set<(view: CommandView) => void>>();
  /**
   * Commands whose final status is being committed, with the view reads show
   * until it is: an operator sees a final status (read, ?wait, event) only
   * once a crash can no longer take it back.
   */
  readonly #finishing = new Map<string, CommandView>();
  readonly #pending = new Set<Promise<unknown>>();
  /** Runs the periodic prune; a test passes its own to run it at will instead of waiting an hour. */
  readonly #pruneScheduler: Scheduler;
  #pruneTimer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(deps: {
    store: CommandStore; bus: EventBus; limits: CommandLimits; points: PointSink; logger: Logger; now?: () => number; pruneScheduler?: Scheduler;
  }) {
    this.#store = deps.store;
    this.#bus = deps.bus;
    this.#limits = deps.limits;
    this.#points = deps.points;
    this.#log = deps.logger;
    this.#now = deps.now ?? Date.now;
    this.#pruneScheduler = deps.pruneScheduler ?? globalThis;
  }

  /** Reloads unfinished commands and re-arms their clocks; what ran out while the hub was down ends now. */
  start(): void {
    let restored = 0;
    let maybeSent = 0;
    for (const record of this.#store.all()) {
      if (isFinal(record.status)) continue;
      if (record.status === 'queued' && record.sendingAt !== undefined) {
        // The previous hub stopped while writing it: the device may have it, so it must not go out again.
        record.status = 'sent';
        record.sentAt = record.sendingAt;
        this.#track(this.#store.put(record));
        maybeSent++;
      }
      this.#activeOf(record.deviceId).set(record.id, record);
      this.#arm(record);
      restored++;
    }
    if (restored > 0) this.#log.info({ commands: restored }, 'unfinished commands restored');
    if (maybeSent > 0) this.#log.warn({ commands: maybeSent }, 'commands being sent when the hub stopped count as sent (at most once); they time out unless the device answers');
    const prune = () => {
      this.#track(this.#store.prune(this.#now() - this.#limits.commandRetentionMs, isFinal));
    };
    const scheduleNext = () => {
      this.#pruneTimer = this.#pruneScheduler.setTimeout(() => {
        if (this.#closed) return;
        prune();
        scheduleNext();
      }, PRUNE_EVERY_MS);
      this.#pruneTimer.unref?.();
    };
    prune();
    scheduleNext();
  }

  /** Throws what create() would for this request regardless of the device (a fleet job checks once, up front). */
  check(request: NewCommand): void {
    // Every id has the same length, so any id of that length gives the frame's exact size.
    this.#check(request, 'c'.repeat(COMMAND_ID_LENGTH));
  }

  #check(request: NewCommand, commandId: string): void {
    const { commandTtlMs } = this.#limits;
    if (request.ttlMs !== undefined && request.ttlMs > commandTtlMs) {
      throw new PulsewireError('PW_ERR_COMMAND_TTL_TOO_LONG', `ttlMs ${request.ttlMs} is above the limit ${commandTtlMs} (PULSEWIRE_COMMAND_TTL_MS)`);
    }
    this.#checkSize(commandId, request.name, request.args ?? null);
  }

  async create(deviceId: string, request: NewCommand): Promise<CommandView> {
    const { commandQueueMax, commandTtlMs, commandTimeoutMs } = this.#limits;
    const id = this.#newId();
    this.#check(request, id);
    const ttlMs = request.ttlMs ?? commandTtlMs;
    const args = request.args ?? null;
    const waiting = this.#active.get(deviceId)?.size ?? 0;
    if (waiting >= commandQueueMax) {
      throw new PulsewireError('PW_ERR_COMMAND_QUEUE_FULL', `${deviceId} has ${waiting} unfinished commands, the limit is ${commandQueueMax} (PULSEWIRE_COMMAND_QUEUE_MAX)`);
    }
    const record: CommandRecord = {
      id,
      deviceId,
      name: request.name,
      args,
      status: 'queued',
      createdAt: this.#now(),
      ttlMs,
      timeoutMs: request.timeoutMs ?? commandTimeoutMs,
      ...(request.jobId ? { jobId: request.jobId } : {}),
    };
    // Counted before the commit so concurrent creates cannot overrun the queue limit.
    this.#activeOf(deviceId).set(record.id, record);
    try {
      await this.#store.put(record);
    } catch (err) {
      this.#forgetActive(record);
      throw new PulsewireError('PW_ERR_INTERNAL', `command not stored: ${(err as Error).message}`, { cause: err });
    }
    this.#arm(record);
    this.#emit(record, undefined);
    return toView(record);
  }

  get(deviceId: string, commandId: string): CommandView | undefined {
    const shown = this.#finishing.get(commandId);
    if (shown?.deviceId === deviceId) return shown;
    const record = this.#active.get(deviceId)?.get(commandId) ?? this.#store.get(deviceId, commandId);
    return record ? toView(record) : undefined;
  }

  list(deviceId: string, status: CommandStatus | undefined, limit: number): CommandView[] {
    const all = this.#store.byDevice(deviceId);
    const active = this.#active.get(deviceId);
    const out: CommandView[] = [];
    for (const stored of all) {
      const record = active?.get(stored.id);
      const view = this.#finishing.get(stored.id) ?? toView(record ?? stored);
      if (status !== undefined && view.status !== status) continue;
      out.push(view);
      if (out.length >= limit) break;
    }
    return out;
  }

  async cancel(deviceId: string, commandId: string, reason = 'cancelled by operator'): Promise<CommandView> {
    const record = this.#active.get(deviceId)?.get(commandId);
    if (!record) {
      const done = this.#store.get(deviceId, commandId);
      if (!done) throw new PulsewireError('PW_ERR_COMMAND_NOT_FOUND', `${deviceId}/${commandId}`);
      throw new PulsewireError('PW_ERR_COMMAND_NOT_QUEUED', `${commandId} is ${done.status}`);
    }
    if (record.status !== 'queued' || this.#inFlight.has(commandId)) {
      throw new PulsewireError('PW_ERR_COMMAND_NOT_QUEUED', `${commandId} is ${this.#inFlight.has(commandId) ? 'being sent' : record.status}`);
    }
    await this.#finish(record, 'cancelled', reason);
    return toView(record);
  }

  /** Cancels everything a removed device still had waiting. */
  async forgetDevice(deviceId: string): Promise<void> {
    const active = [...(this.#active.get(deviceId)?.values() ?? [])];
    await Promise.all(active.map((record) => this.#finish(record, 'cancelled', 'device removed')));
  }

  /** Resolves with the command once final, or as it is when `waitMs` ends. */
  waitFinal(deviceId: string, commandId: string, waitMs: number): Promise<CommandView | undefined> {
    const now = this.get(deviceId, commandId);
    if (!now || isFinal(now.status) || waitMs <= 0) return Promise.resolve(now);
    return new Promise((resolve) => {
      let waiters = this.#waiters.get(commandId);
      if (!waiters) this.#waiters.set(commandId, (waiters = new Set()));
      const done = (view: CommandView) => {
        clearTimeout(timer);
        waiters.delete(done);
        if (waiters.size === 0) this.#waiters.delete(commandId);
        resolve(view);
      };
      const timer = setTimeout(() => done(this.get(deviceId, commandId)!), waitMs);
      waiters.add(done);
    });
  }

  /**
   * The queued commands of a device, in order, that are not already being
   * written (the outbox takes them). Resolves once their "sending" mark is
   * committed, so the outbox writes nothing a crash could make it write twice.
   */
  async takeQueued(deviceId: string): Promise<CommandRecord[]> {
    const taken: CommandRecord[] = [];
    for (const record of this.#active.get(deviceId)?.values() ?? []) {
      if (record.status !== 'queued' || this.#inFlight.has(record.id)) continue;
      this.#inFlight.add(record.id);
      taken.push(record);
    }
    if (taken.length === 0) return taken;
    const sendingAt = this.#now();
    try {
      await Promise.all(taken.map((record) => this.#store.put(Object.assign(record, { sendingAt }))));
    } catch (err) {
      this.#log.warn({ err, deviceId }, 'sending mark not stored; commands stay queued');
      this.#unmark(taken);
      return [];
    }
    // Cancelled meanwhile (device removed): those stay unsent.
    return taken.filter((record) => record.status === 'queued');
  }

  /**
   * What the outbox's write did with each of `records` (`written[i]` for
   * records[i]): true, it was or may have been written, so it is sent; false,
   * it certainly was not, so it goes back to the queue in its place, unmarked.
   */
  delivered(records: readonly CommandRecord[], written: readonly boolean[]): void {
    this.#unmark(records.filter((_, i) => written[i] !== true));
    for (const [i, record] of records.entries()) {
      if (written[i] !== true) continue;
      this.#inFlight.delete(record.id);
      if (record.status === 'queued') this.#transition(record, 'sent', { sentAt: this.#now() });
    }
  }

  #unmark(records: readonly CommandRecord[]): void {
    for (const record of records) {
      this.#inFlight.delete(record.id);
      if (record.status !== 'queued' || record.sendingAt === undefined) continue;
      delete record.sendingAt;
      this.#track(this.#store.put(record));
    }
  }

  /** RESULT from the device that owns the command. Unknown ids and late answers are logged and ignored. */
  onResult(deviceId: string, message: ResultMessage): void {
    const record = this.#active.get(deviceId)?.get(message.commandId);
    if (!record) {
      const done = this.#store.get(deviceId, message.commandId);
      if (done) this.#log.info({ deviceId, commandId: message.commandId, status: done.status, resultStatus: message.status }, 'RESULT for a finished command ignored');
      else this.#log.warn({ deviceId, commandId: message.commandId }, 'RESULT for an unknown command ignored');
      return;
    }
    const status = RESULT_STATUS[message.status];
    if (!status) {
      this.#log.warn({ deviceId, commandId: message.commandId, resultStatus: message.status }, 'RESULT with an unknown status ignored');
      return;
    }
    // The device can answer before our write callback ran: it evidently has the command.
    if (record.status === 'queued') this.#transition(record, 'sent', { sentAt: this.#now() });
    const payload = message.payload === undefined ? undefined : cborToJson(message.payload);
    if (status === 'received') {
      if (record.status === 'sent') this.#transition(record, 'received', payload === undefined ? {} : { result: payload });
      return;
    }
    this.#track(this.#finish(record, status, payload));
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#pruneScheduler.clearTimeout(this.#pruneTimer);
    for (const timer of this.#timers.values()) timer.cancel();
    this.#timers.clear();
    // Final statuses being committed answer their own waiters; the rest get the command as it is.
    await Promise.allSettled([...this.#pending]);
    for (const [id, waiters] of this.#waiters) {
      for (const done of [...waiters]) done(this.#findAnywhere(id)!);
    }
  }

  #findAnywhere(commandId: string): CommandView | undefined {
    for (const byId of this.#active.values()) {
      const record = byId.get(commandId);
      if (record) return toView(record);
    }
    return undefined;
  }

  /** The COMMAND frame as it will go out, with its id, must fit PULSEWIRE_MAX_MESSAGE_BYTES. */
  #checkSize(commandId: string, name: string, args: JsonValue): void {
    let frame: Uint8Array;
    try {
      frame = encodeCommand(commandId, name, jsonToCbor(args));
    } catch (err) {
      if (err instanceof JsonCborError) throw new PulsewireError('PW_ERR_BAD_REQUEST', `args.${err.message}`);
      throw new PulsewireError('PW_ERR_BAD_REQUEST', `args: ${(err as Error).message}`);
    }
    if (frame.length > this.#limits.maxMessageBytes) {
      throw new PulsewireError('PW_ERR_COMMAND_TOO_BIG', `${frame.length} bytes encoded, the limit is ${this.#limits.maxMessageBytes} (PULSEWIRE_MAX_MESSAGE_BYTES)`);
    }
  }

  /** Sortable by creation (time in base 36, fixed width) and unique across restarts and hubs. */
  #newId(): string {
    const id = `c${this.#pointClock().toString(36).padStart(11, '0')}${randomBytes(3).toString('hex')}`;
    // 36^11 µs is about the year 4240; past that the size check above would be 1 byte short.
    if (id.length !== COMMAND_ID_LENGTH) throw new Error(`command id ${id} is not ${COMMAND_ID_LENGTH} characters`);
    return id;
  }

  /**
   * TTL while queued, timeout once sent: one timer per unfinished command,
   * on the service's clock. A TTL may be 30 days, beyond what one setTimeout
   * can wait (deadline.ts).
   */
  #arm(record: CommandRecord, retryInMs?: number): void {
    this.#timers.get(record.id)?.cancel();
    const sent = record.status === 'sent' || record.status === 'received';
    const deadline = retryInMs !== undefined ? this.#now() + retryInMs : sent ? record.sentAt! + record.timeoutMs : record.createdAt + record.ttlMs;
    this.#timers.set(record.id, atDeadline(deadline, () => {
      this.#timers.delete(record.id);
      if (isFinal(record.status)) return;
      // Being written right now: the write decides (sent, or back to queued and expired then).
      if (!sent && this.#inFlight.has(record.id)) return this.#arm(record, 50);
      this.#track(this.#finish(record, sent ? 'timed-out' : 'expired', sent ? `no final RESULT within ${record.timeoutMs} ms` : `not sent within ttlMs ${record.ttlMs}`));
    }, this.#now));
  }

  #transition(record: CommandRecord, status: CommandStatus, changes: Partial<CommandRecord>): void {
    const previous = record.status;
    Object.assign(record, changes, { status });
    if (status === 'sent') this.#arm(record);
    this.#track(this.#store.put(record));
    this.#emit(record, previous);
  }

  /**
   * Ends the command at once for the hub (no second final status, no send,
   * no timer), but shows, emits and answers waiters only after the commit:
   * a hub killed in between loses a final status nobody saw. The `command`
   * point follows the commit too, so InfluxDB never counts a status that a
   * restart takes back. Resolves after all that; never rejects.
   */
  async #finish(record: CommandRecord, status: CommandStatus, result: JsonValue | undefined): Promise<void> {
    if (isFinal(record.status)) return;
    const previous = record.status;
    this.#finishing.set(record.id, toView(record));
    const completedAt = this.#now();
    Object.assign(record, { status, completedAt }, result === undefined ? {} : { result });
    this.#timers.get(record.id)?.cancel();
    this.#timers.delete(record.id);
    this.#forgetActive(record);
    try {
      await this.#store.put(record);
    } catch (err) {
      // Nothing better to do than show it: holding it back would leave the command unfinished for good.
      this.#log.warn({ err, deviceId: record.deviceId, commandId: record.id, status }, 'final command status not stored; a restart would bring the command back unfinished');
    }
    this.#finishing.delete(record.id);
    const latencyMs = completedAt - (record.sentAt ?? record.createdAt);
    this.#track(this.#points.append(record.deviceId, [commandPoint(record.deviceId, record.name, status, latencyMs, this.#pointClock())]));
    this.#emit(record, previous);
  }

  #emit(record: CommandRecord, previous: CommandStatus | undefined): void {
    const view = toView(record);
    this.#bus.emit('command.status', { command: view, previous });
    if (isFinal(record.status)) for (const done of [...(this.#waiters.get(record.id) ?? [])]) done(view);
  }

  #activeOf(deviceId: string): Map<string, CommandRecord> {
    let byId = this.#active.get(deviceId);
    if (!byId) this.#active.set(deviceId, (byId = new Map()));
    return byId;
  }

  #forgetActive(record: CommandRecord): void {
    const byId = this.#active.get(record.deviceId);
    byId?.delete(record.id);
    if (byId?.size === 0) this.#active.delete(record.deviceId);
    this.#inFlight.delete(record.id);
  }

  #track(work: Promise<unknown>): void {
    const tracked = work.catch((err: unknown) => this.#log.warn({ err }, 'command bookkeeping write failed')).finally(() => this.#pending.delete(tracked));
    this.#pending.add(tracked);
  }
}

export function toView(record: CommandRecord): CommandView {
  const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
  return {
    id: record.id,
    deviceId: record.deviceId,
    name: record.name,
    args: record.args,
    status: record.status,
    ...(record.result !== undefined ? { result: record.result } : {}),
    createdAt: iso(record.createdAt)!,
    ...(record.sentAt !== undefined ? { sentAt: iso(record.sentAt) } : {}),
    ...(record.completedAt !== undefined ? { completedAt: iso(record.completedAt) } : {}),
    ttlMs: record.ttlMs,
    timeoutMs: record.timeoutMs,
    ...(record.jobId ? { jobId: record.jobId } : {}),
  };
}
