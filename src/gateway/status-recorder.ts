/**
 * Records every online/offline change of a device in the four places an
 * operator looks: the registry (GET /v1/devices), InfluxDB (`device_status`),
 * the event bus (live views) and the log. Storage failures here are logged,
 * never thrown into the socket path: a status point is worth less than
 * keeping the gateway running.
 *
 * The bus and the log hear of a change at once; the two stores get it in
 * batches, every STATUS_FLUSH_MS. lmdb commits every write issued in one event
 * turn together, and at hundreds of connects per second each connect came in
 * a turn of its own: one registry commit, one spool commit and one InfluxDB
 * request per device (a third of the hub's CPU during a reconnect storm, by
 * profile). Writing a batch in one turn makes that one of each. Changes keep
 * their order, and a crash loses at most the last batch of status records,
 * which is what a crash already did to the commits in flight (the registry
 * marks devices left online offline at the next start).
 */
import type { EventBus, OfflineReason } from '../events/bus.js';
import type { DeviceRegistry, DeviceStatus } from '../registry/device-registry.js';
import { statusPoint } from '../storage/schema.js';
import { receiptClock } from './receipt-clock.js';
import type { DeviceRuntime, DeviceSessionHandle } from './device-runtime.js';

type Logger = { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };

export type StatusRecorderDeps = {
  registry: DeviceRegistry;
  /** The spool, like telemetry: a status point waits there during an InfluxDB outage instead of blocking shutdown. */
  sink: { append(deviceId: string, points: ReturnType<typeof statusPoint>[]): Promise<void> };
  bus: EventBus;
  logger: Logger;
};

/** Longest a status change waits for its batch; short next to anything an operator could notice. */
export const STATUS_FLUSH_MS = 10;

export class StatusRecorder {
  readonly #deps: StatusRecorderDeps;
  readonly #pending = new Set<Promise<unknown>>();
  readonly #clock = receiptClock();
  /** Store writes waiting for the next flush, in the order the changes happened. */
  #queued: Array<() => Promise<unknown>> = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(deps: StatusRecorderDeps) {
    this.#deps = deps;
  }

  online(runtime: DeviceRuntime, session: DeviceSessionHandle, method: string, tookOver: boolean): void {
    const { registry, bus, logger } = this.#deps;
    const at = session.connectedAt;
    runtime.lastSeen = at;
    runtime.messagesInBefore ??= registry.get(runtime.deviceId)?.status.messagesIn ?? 0;
    logger.info({ deviceId: runtime.deviceId, remoteAddress: session.remoteAddress, method, tookOver }, 'device online');
    this.#status(runtime.deviceId, {
      online: true, connectedAt: at, lastSeen: at, remoteAddress: session.remoteAddress, offlineReason: undefined,
    });
    // A takeover is not an offline/online change: the device never stopped being online.
    if (!tookOver) this.#point(runtime.deviceId, true, 'connected');
    bus.emit('device.online', { deviceId: runtime.deviceId, at, remoteAddress: session.remoteAddress, method });
  }

  offline(runtime: DeviceRuntime, reason: OfflineReason, detail: string | undefined): void {
    const { bus, logger } = this.#deps;
    const at = Date.now();
    logger.info({ deviceId: runtime.deviceId, reason, detail }, 'device offline');
    this.#status(runtime.deviceId, {
      online: false, lastSeen: runtime.lastSeen, offlineReason: reason, messagesIn: runtime.messagesInTotal,
    });
    this.#point(runtime.deviceId, false, reason);
    bus.emit('device.offline', { deviceId: runtime.deviceId, at, reason, ...(detail ? { detail } : {}) });
  }

  /** Writes what is queued now and waits for every status write started so far (shutdown). */
  async flush(): Promise<void> {
    this.#flushQueued();
    await Promise.allSettled([...this.#pending]);
  }

  #status(deviceId: string, patch: Partial<DeviceStatus>): void {
    this.#enqueue(() => this.#deps.registry.updateStatus(deviceId, patch));
  }

  /**
   * Stamped with the receipt clock (µs, never the same value twice), not the
   * millisecond of the change: a device connecting and going in one
   * millisecond would give two points of one timestamp, and InfluxDB keeps
   * only the last (seen: the "connected" point of a short session vanished).
   */
  #point(deviceId: string, online: boolean, reason: string): void {
    const atUs = this.#clock();
    this.#enqueue(() => this.#deps.sink.append(deviceId, [statusPoint(deviceId, online, reason, atUs)]));
  }

  #enqueue(write: () => Promise<unknown>): void {
    this.#queued.push(write);
    this.#timer ??= setTimeout(() => this.#flushQueued(), STATUS_FLUSH_MS);
  }

  /** Issues every queued write in this one turn, so each store commits them together. */
  #flushQueued(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const queued = this.#queued;
    this.#queued = [];
    for (const write of queued) this.#track(write());
  }

  #track(work: Promise<unknown>): void {
    const tracked = work.catch((err: unknown) => {
      this.#deps.logger.warn({ err }, 'could not record device status');
    }).finally(() => this.#pending.delete(tracked));
    this.#pending.add(tracked);
  }
}
