/**
 * Commands from operators to devices (protocol section 3, COMMAND/RESULT):
 * creation with limits, the per-device queue, the state machine, results,
 * cancellation, waiting for a final state, and one `command.status` event per
 * change. Delivery over a device's connection is the outbox's job
 * (outbox.ts); it asks this service what is queued and reports back what was
 * written. Deadlines (TTL, timeout) are deadlines.ts's, run by one node.
 *
 * The command store is the truth: every change is a revision-checked
 * transition, so of two racing writers (a RESULT and a deadline, a cancel and
 * a sending mark, two nodes) exactly one wins. This service keeps in memory
 * only what is this node's own: commands its connections are writing right
 * now, waiters, and views of final statuses still being committed.
 *
 * Delivery is at most once: a command whose connection dropped after it was
 * written, or may have been written, is not sent again (a "reboot" must not
 * run twice); it times out. Only a command whose frame certainly never left
 * goes back to the queue in its place (the outcome is per frame). A hub may
 * die between writing a frame and committing "sent", so a "sending" mark is
 * committed before the write; a mark left by a node that is gone counts as
 * sent at that time (it times out unless its RESULT comes), never as queued.
 * A final status is shown, emitted and answered only once committed, so a
 * crash takes back none an operator saw.
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
import type { CommandRecord, CommandStore, Transition } from './command-store.js';
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
  readonly #nodeId: string;
  readonly #pointClock = receiptClock();
  /** Commands this node's connections are writing right now. */
  readonly #inFlight = new Set<string>();
  /** Creates not committed yet, per device, so concurrent creates cannot overrun the queue limit. */
  readonly #creating = new Map<string, number>();
  readonly #waiters = new Map<string, Set<(view: CommandView | undefined) => void>>();
  /** Views shown while a final status is being committed (see the header). */
  readonly #finishing = new Map<string, CommandView>();
  readonly #pending = new Set<Promise<unknown>>();
  readonly #unsubscribe: () => void;

  constructor(deps: { store: CommandStore; bus: EventBus; limits: CommandLimits; points: PointSink; logger: Logger; now?: () => number; nodeId?: string }) {
    this.#store = deps.store;
    this.#bus = deps.bus;
    this.#limits = deps.limits;
    this.#points = deps.points;
    this.#log = deps.logger;
    this.#now = deps.now ?? Date.now;
    this.#nodeId = deps.nodeId ?? 'local';
    // Final statuses reach waiters through the bus, whichever node made them.
    this.#unsubscribe = this.#bus.on('command.status', ({ command }) => {
      if (isFinal(command.status)) for (const done of [...(this.#waiters.get(command.id) ?? [])]) done(command);
    });
  }

  get store(): CommandStore {
    return this.#store;
  }

  get limits(): CommandLimits {
    return this.#limits;
  }

  /**
   * Start-up, before anything connects: sending marks this node left in an
   * earlier run (a node id given by PULSEWIRE_NODE_ID stays the same across
   * restarts) count as sent at the time of the mark, never as queued: the
   * frame may have reached the device. Marks of other nodes are the
   * deadline holder's to judge (deadlines.ts).
   */
  async recoverOwnMarks(): Promise<number> {
    let recovered = 0;
    for await (const record of this.#store.unfinished()) {
      if (record.status !== 'queued' || record.sendingAt === undefined || record.sendingBy !== this.#nodeId) continue;
      const t = await this.#store.transition(record.deviceId, record.id, (c) => (c.status === 'queued' && c.sendingBy === this.#nodeId ? { ...c, status: 'sent', sentAt: c.sendingAt! } : undefined));
      if (t) recovered++;
    }
    if (recovered > 0) this.#log.warn({ commands: recovered }, 'commands being sent when the hub stopped count as sent (at most once); they time out unless the device answers');
    return recovered;
  }

  /** Throws what create() would for this request regardless of the device (a fleet job checks once, up front). */
  check(request: NewCommand): void {
    // Every id has the same length, so any id of that length gives the frame's exact size.
    this.#check(request, 'c'.repeat(COMMAND_ID_LENGTH));
  }

  async create(deviceId: string, request: NewCommand): Promise<CommandView> {
    const { commandQueueMax, commandTtlMs, commandTimeoutMs } = this.#limits;
    const id = this.#newId();
    this.#check(request, id);
    this.#creating.set(deviceId, (this.#creating.get(deviceId) ?? 0) + 1);
    try {
      const waiting = (await this.#store.queueOf(deviceId)).length + this.#creating.get(deviceId)! - 1;
      if (waiting >= commandQueueMax) {
        throw new PulsewireError('PW_ERR_COMMAND_QUEUE_FULL', `${deviceId} has ${waiting} unfinished commands, the limit is ${commandQueueMax} (PULSEWIRE_COMMAND_QUEUE_MAX)`);
      }
      const record: CommandRecord = {
        id,
        deviceId,
        name: request.name,
        args: request.args ?? null,
        status: 'queued',
        createdAt: this.#now(),
        ttlMs: request.ttlMs ?? commandTtlMs,
        timeoutMs: request.timeoutMs ?? commandTimeoutMs,
        ...(request.jobId ? { jobId: request.jobId } : {}),
      };
      try {
        await this.#store.create(record);
      } catch (err) {
        throw new PulsewireError('PW_ERR_INTERNAL', `command not stored: ${(err as Error).message}`, { cause: err });
      }
      this.#emit(record, undefined);
      return toView(record);
    } finally {
      const left = this.#creating.get(deviceId)! - 1;
      if (left > 0) this.#creating.set(deviceId, left);
      else this.#creating.delete(deviceId);
    }
  }

  async get(deviceId: string, commandId: string): Promise<CommandView | undefined> {
    const record = await this.#store.get(deviceId, commandId);
    // Looked at after the read: a final status may have started committing meanwhile.
    const shown = this.#finishing.get(commandId);
    if (shown?.deviceId === deviceId) return shown;
    return record ? toView(record) : undefined;
  }

  async list(deviceId: string, status: CommandStatus | undefined, limit: number): Promise<CommandView[]> {
    const out: CommandView[] = [];
    for (const stored of await this.#store.byDevice(deviceId)) {
      const view = this.#finishing.get(stored.id) ?? toView(stored);
      if (status !== undefined && view.status !== status) continue;
      out.push(view);
      if (out.length >= limit) break;
    }
    return out;
  }

  async cancel(deviceId: string, commandId: string, reason = 'cancelled by operator'): Promise<CommandView> {
    const done = await this.#finish(deviceId, commandId, 'cancelled', reason, (c) => c.status === 'queued' && c.sendingAt === undefined && !this.#inFlight.has(c.id));
    if (done) return toView(done.after);
    const current = await this.#store.get(deviceId, commandId);
    if (!current) throw new PulsewireError('PW_ERR_COMMAND_NOT_FOUND', `${deviceId}/${commandId}`);
    const being = current.status === 'queued' && (current.sendingAt !== undefined || this.#inFlight.has(commandId));
    throw new PulsewireError('PW_ERR_COMMAND_NOT_QUEUED', `${commandId} is ${being ? 'being sent' : current.status}`);
  }

  /** Cancels everything a removed device still had waiting. */
  async forgetDevice(deviceId: string): Promise<void> {
    const unfinished = await this.#store.queueOf(deviceId);
    await Promise.all(unfinished.map((c) => this.#finish(deviceId, c.id, 'cancelled', 'device removed', (current) => !isFinal(current.status))));
  }

  /**
   * Resolves with the command once final, or as it is when `waitMs` ends.
   * The waiter is registered before the command is read, so a final status
   * committed while the read runs is heard either way, with one read (not a
   * second one to cover that gap: each read decodes the stored record).
   */
  async waitFinal(deviceId: string, commandId: string, waitMs: number): Promise<CommandView | undefined> {
    if (waitMs <= 0) return this.get(deviceId, commandId);
    return new Promise((resolve, reject) => {
      let waiters = this.#waiters.get(commandId);
      if (!waiters) this.#waiters.set(commandId, (waiters = new Set()));
      let settled = false;
      let latest: CommandView | undefined;
      const settle = (): boolean => {
        if (settled) return false;
        settled = true;
        clearTimeout(timer);
        waiters.delete(done);
        if (waiters.size === 0) this.#waiters.delete(commandId);
        return true;
      };
      const done = (view: CommandView | undefined) => { if (settle()) resolve(view); };
      const timer = setTimeout(() => void this.get(deviceId, commandId).then(done, () => done(latest)), waitMs);
      waiters.add(done);
      this.get(deviceId, commandId).then((view) => {
        latest = view;
        if (!view || isFinal(view.status)) done(view);
      }, (err: unknown) => { if (settle()) reject(err); });
    });
  }

  /**
   * The queued commands of a device, in order, that nobody is writing yet.
   * Each gets a "sending" mark first (a revision-checked transition, so a
   * cancel that came first wins and the command is not taken); resolves once
   * the marks are durable, so the outbox writes nothing a crash could make it
   * write twice.
   */
  async takeQueued(deviceId: string): Promise<CommandRecord[]> {
    let candidates: CommandRecord[];
    try {
      candidates = (await this.#store.queueOf(deviceId)).filter((c) => c.status === 'queued' && c.sendingAt === undefined && !this.#inFlight.has(c.id));
    } catch (err) {
      this.#log.warn({ err, deviceId }, 'queue not read; commands stay queued');
      return [];
    }
    for (const c of candidates) this.#inFlight.add(c.id);
    const sendingAt = this.#now();
    const marked = await Promise.all(candidates.map((c) => this.#store.transition(deviceId, c.id, (current) => (
      current.status === 'queued' && current.sendingAt === undefined ? { ...current, sendingAt, sendingBy: this.#nodeId } : undefined
    )).catch((err: unknown) => {
      this.#log.warn({ err, deviceId, commandId: c.id }, 'sending mark not stored; command stays queued');
      return undefined;
    })));
    const taken: CommandRecord[] = [];
    for (const [i, t] of marked.entries()) {
      if (t) taken.push(t.after);
      else this.#inFlight.delete(candidates[i]!.id);
    }
    return taken;
  }

  /**
   * What the outbox's write did with each of `records` (`written[i]` for
   * records[i]): true, it was or may have been written, so it is sent; false,
   * it certainly was not, so it goes back to the queue in its place, unmarked.
   * Resolves once every record's new state is stored (the outbox's next round
   * must find the unmarked ones queued again); never rejects.
   */
  async delivered(records: readonly CommandRecord[], written: readonly boolean[]): Promise<void> {
    const done: Promise<unknown>[] = [];
    for (const [i, record] of records.entries()) {
      const sent = written[i] === true;
      const change = sent
        ? (c: CommandRecord) => (c.status === 'queued' ? { ...c, status: 'sent' as const, sentAt: this.#now() } : undefined)
        : (c: CommandRecord) => {
            if (c.status !== 'queued' || c.sendingAt === undefined) return undefined;
            const { sendingAt: _at, sendingBy: _by, ...unmarked } = c;
            return unmarked;
          };
      const work = this.#store.transition(record.deviceId, record.id, change).then((t) => {
        if (t && sent) this.#emit(t.after, t.before.status);
      }).finally(() => this.#inFlight.delete(record.id));
      this.#track(work);
      done.push(work.catch(() => undefined));
    }
    await Promise.all(done);
  }

  /** RESULT from the device that owns the command. Unknown ids and late answers are logged and ignored. */
  onResult(deviceId: string, message: ResultMessage): void {
    const status = RESULT_STATUS[message.status];
    if (!status) {
      this.#log.warn({ deviceId, commandId: message.commandId, resultStatus: message.status }, 'RESULT with an unknown status ignored');
      return;
    }
    const payload = message.payload === undefined ? undefined : cborToJson(message.payload);
    this.#track(this.#onResult(deviceId, message.commandId, status, payload));
  }

  async #onResult(deviceId: string, commandId: string, status: CommandStatus, payload: JsonValue | undefined): Promise<void> {
    // The device can answer before our write callback ran: it evidently has the command.
    const asSent = (c: CommandRecord): CommandRecord => (c.status === 'queued' ? { ...c, status: 'sent', sentAt: this.#now() } : c);
    const done = status === 'received'
      ? await this.#store.transition(deviceId, commandId, (c) => {
          if (isFinal(c.status) || c.status === 'received') return undefined;
          return { ...asSent(c), status: 'received', ...(payload === undefined ? {} : { result: payload }) };
        })
      : await this.#finish(deviceId, commandId, status, payload, (c) => !isFinal(c.status), asSent);
    if (done) {
      if (status === 'received') this.#emitWithSent(done);
      return;
    }
    const current = await this.#store.get(deviceId, commandId);
    if (current) this.#log.info({ deviceId, commandId, status: current.status, resultStatus: status }, 'RESULT for a finished command ignored');
    else this.#log.warn({ deviceId, commandId }, 'RESULT for an unknown command ignored');
  }

  /**
   * Ends a command with a final status, if `allowed` still holds when the
   * transition is made (read again after every lost race). Reads on this node
   * show the previous view until the commit, then the event goes out, waiters
   * are answered and the `command` point is spooled, so a hub killed in
   * between loses a final status nobody saw. Resolves undefined when the
   * command is unknown or `allowed` no longer holds.
   */
  async #finish(
    deviceId: string, commandId: string, status: CommandStatus, result: JsonValue | undefined,
    allowed: (current: CommandRecord) => boolean, prepare: (current: CommandRecord) => CommandRecord = (c) => c,
  ): Promise<Transition | undefined> {
    let shown: CommandView | undefined;
    let done: Transition | undefined;
    try {
      done = await this.#store.transition(deviceId, commandId, (current) => {
        if (!allowed(current)) return undefined;
        // Another final status of this command racing ours shows the same previous view; the first keeps it.
        if (shown === undefined && !this.#finishing.has(commandId)) this.#finishing.set(commandId, (shown = toView(current)));
        return { ...prepare(current), status, completedAt: this.#now(), ...(result === undefined ? {} : { result }) };
      });
    } finally {
      if (shown !== undefined && this.#finishing.get(commandId) === shown) this.#finishing.delete(commandId);
    }
    if (!done) return undefined;
    const { after } = done;
    const latencyMs = after.completedAt! - (after.sentAt ?? after.createdAt);
    this.#track(this.#points.append(deviceId, [commandPoint(deviceId, after.name, status, latencyMs, this.#pointClock())]));
    this.#emitWithSent(done);
    return done;
  }

  /** Expires or times out a command whose deadline passed (deadlines.ts); a no-op once it moved on. */
  async expire(deviceId: string, commandId: string, isNodeAlive: (node: string | undefined) => boolean): Promise<CommandRecord | undefined> {
    const current = await this.#store.get(deviceId, commandId);
    if (!current || isFinal(current.status)) return undefined;
    const now = this.#now();
    if (current.status === 'queued' && current.sendingAt !== undefined) {
      // Being written by a live node: its outcome decides. Marked by a node that is gone: it may have gone out.
      if (isNodeAlive(current.sendingBy) && current.sendingBy !== undefined) return current;
      const t = await this.#store.transition(deviceId, commandId, (c) => (c.status === 'queued' && c.sendingAt !== undefined ? { ...c, status: 'sent', sentAt: c.sendingAt } : undefined));
      if (t) this.#emit(t.after, t.before.status);
      return t?.after;
    }
    if (current.status === 'queued') {
      if (now < current.createdAt + current.ttlMs) return current;
      const t = await this.#finish(deviceId, commandId, 'expired', `not sent within ttlMs ${current.ttlMs}`,
        (c) => c.status === 'queued' && c.sendingAt === undefined && !this.#inFlight.has(c.id));
      return t?.after ?? (await this.#store.get(deviceId, commandId));
    }
    if (now < current.sentAt! + current.timeoutMs) return current;
    const t = await this.#finish(deviceId, commandId, 'timed-out', `no final RESULT within ${current.timeoutMs} ms`, (c) => c.status === 'sent' || c.status === 'received');
    return t?.after;
  }

  async close(): Promise<void> {
    this.#unsubscribe();
    // Final statuses being committed answer their own waiters; the rest get the command as it is.
    await Promise.allSettled([...this.#pending]);
    for (const [id, waiters] of this.#waiters) {
      for (const done of [...waiters]) done(this.#finishing.get(id));
    }
    await this.#store.flush();
  }

  /** Throws the error create() would give for this request and id. */
  #check(request: NewCommand, commandId: string): void {
    const { commandTtlMs } = this.#limits;
    if (request.ttlMs !== undefined && request.ttlMs > commandTtlMs) {
      throw new PulsewireError('PW_ERR_COMMAND_TTL_TOO_LONG', `ttlMs ${request.ttlMs} is above the limit ${commandTtlMs} (PULSEWIRE_COMMAND_TTL_MS)`);
    }
    // The COMMAND frame as it will go out, with its id, must fit PULSEWIRE_MAX_MESSAGE_BYTES.
    let frame: Uint8Array;
    try {
      frame = encodeCommand(commandId, request.name, jsonToCbor(request.args ?? null));
    } catch (err) {
      if (err instanceof JsonCborError) throw new PulsewireError('PW_ERR_BAD_REQUEST', `args.${err.message}`);
      throw new PulsewireError('PW_ERR_BAD_REQUEST', `args: ${(err as Error).message}`);
    }
    if (frame.length > this.#limits.maxMessageBytes) {
      throw new PulsewireError('PW_ERR_COMMAND_TOO_BIG', `${frame.length} bytes encoded, the limit is ${this.#limits.maxMessageBytes} (PULSEWIRE_MAX_MESSAGE_BYTES)`);
    }
  }

  /** Sortable by creation (time in base 36, fixed width) and unique across restarts and nodes. */
  #newId(): string {
    const id = `c${this.#pointClock().toString(36).padStart(11, '0')}${randomBytes(3).toString('hex')}`;
    // 36^11 µs is about the year 4240; past that the size check above would be 1 byte short.
    if (id.length !== COMMAND_ID_LENGTH) throw new Error(`command id ${id} is not ${COMMAND_ID_LENGTH} characters`);
    return id;
  }

  /** One event per status the command went through: a RESULT for a queued command passes "sent" first. */
  #emitWithSent({ before, after }: Transition): void {
    if (before.status === 'queued' && after.status !== 'sent' && after.sentAt !== undefined) {
      this.#emit({ ...after, status: 'sent' }, 'queued');
      this.#emit(after, 'sent');
    } else {
      this.#emit(after, before.status);
    }
  }

  #emit(record: CommandRecord, previous: CommandStatus | undefined): void {
    this.#bus.emit('command.status', { command: toView(record), previous });
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
