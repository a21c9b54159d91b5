/**
 * Records every online/offline change of a device in the four places an
 * operator looks: the device's status record (presence; GET /v1/devices), InfluxDB (`device_status`),
 * the event bus (live views) and the log. Storage failures here are logged,
 * never thrown into the socket path: a status point is worth less than
 * keeping the gateway running.
 *
 * The bus and the log hear of a change at once; the two stores get it in
 * batches, every STATUS_FLUSH_MS. lmdb commits every write issued in one event
 * turn together, and at hundreds of connects per second each connect came in
 * a turn of its own: one status commit, one spool commit and one InfluxDB
 * request per device (a third of the hub's CPU during a reconnect storm, by
 * profile). Writing a batch in one turn makes that one of each. Changes keep
 * their order, and a crash loses at most the last batch of status records,
 * which is what a crash already did to the commits in flight (devices left
 * online are marked offline at the next start, or by another node).
 */
import type { EventBus, OfflineReason } from '../events/bus.js';
import type { WindowHandover } from '../cluster/window-handover.js';
import type { Claim, DevicePresence } from '../presence/device-presence.js';
import { statusPoint } from '../storage/schema.js';
import { receiptClock } from './receipt-clock.js';
import type { DeviceRuntime, DeviceSessionHandle } from './device-runtime.js';

type Logger = { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };

export type StatusRecorderDeps = {
  presence: DevicePresence;
  /** The spool, like telemetry: a status point waits there during an InfluxDB outage instead of blocking shutdown. */
  sink: { append(deviceId: string, points: ReturnType<typeof statusPoint>[]): Promise<void> };
  bus: EventBus;
  logger: Logger;
  now?: () => number;
  /** Cluster mode: the device's duplicate window moves with its claim. */
  handover?: WindowHandover;
};

/** Longest a status change waits for its batch; short next to anything an operator could notice. */
export const STATUS_FLUSH_MS = 10;

export class StatusRecorder {
  readonly #deps: StatusRecorderDeps;
  readonly #now: () => number;
  readonly #pending = new Set<Promise<unknown>>();
  readonly #clock = receiptClock();
  /** Store writes waiting for the next flush, in the order the changes happened. */
  #queued: Array<() => void> = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(deps: StatusRecorderDeps) {
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
  }

  /**
   * The session is the device's connection now: its claim (presence) is
   * written in the next batch and kept on the session, so the session's end
   * releases exactly that claim.
   */
  online(runtime: DeviceRuntime, session: DeviceSessionHandle, method: string, tookOver: boolean): void {
    const { presence, bus, logger } = this.#deps;
    const at = session.connectedAt;
    runtime.lastSeen = at;
    logger.info({ deviceId: runtime.deviceId, remoteAddress: session.remoteAddress, method, tookOver }, 'device online');
    const claimed = this.#enqueue(() => presence.claim(runtime.deviceId, { connectedAt: at, remoteAddress: session.remoteAddress }));
    session.claim = claimed.then((result) => {
      runtime.messagesInBefore ??= result.previous.messagesIn;
      return result.claim;
    }, () => undefined);
    const { handover } = this.#deps;
    if (handover) {
      // Its TELEMETRY waits until the claim is written and the previous holder's window is here.
      const ready: Promise<void> = claimed.then((result) => handover.adopt(runtime, result.previous), () => undefined)
        .finally(() => { if (runtime.windowReady === ready) runtime.windowReady = undefined; });
      runtime.windowReady = ready;
    }
    // A takeover is not an offline/online change: the device never stopped being online.
    if (!tookOver) this.#point(runtime.deviceId, true, 'connected');
    bus.emit('device.online', { deviceId: runtime.deviceId, at, remoteAddress: session.remoteAddress, method });
  }

  /** The session ended: its claim is released (unless the device was claimed since), and the change told. */
  offline(runtime: DeviceRuntime, session: DeviceSessionHandle, reason: OfflineReason, detail: string | undefined): void {
    const { presence, bus, logger } = this.#deps;
    const at = this.#now();
    logger.info({ deviceId: runtime.deviceId, reason, detail }, 'device offline');
    const claim = session.claim;
    void this.#enqueue(async () => {
      const held: Claim | undefined = await claim;
      if (!held) return;
      await presence.release(held, { reason, lastSeen: runtime.lastSeen, messagesIn: runtime.messagesInTotal });
      // Not awaited by the batch: it waits for the device's writes in flight.
      void this.#deps.handover?.save(runtime, held);
    }).catch(() => undefined);
    this.#point(runtime.deviceId, false, reason);
    bus.emit('device.offline', { deviceId: runtime.deviceId, at, reason, ...(detail ? { detail } : {}) });
  }

  /** Writes what is queued now and waits for every status write started so far (shutdown). */
  async flush(): Promise<void> {
    this.#flushQueued();
    await Promise.allSettled([...this.#pending]);
  }

  /**
   * Stamped with the receipt clock (µs, never the same value twice), not the
   * millisecond of the change: a device connecting and going in one
   * millisecond would give two points of one timestamp, and InfluxDB keeps
   * only the last (seen: the "connected" point of a short session vanished).
   */
  #point(deviceId: string, online: boolean, reason: string): void {
    const atUs = this.#clock();
    void this.#enqueue(() => this.#deps.sink.append(deviceId, [statusPoint(deviceId, online, reason, atUs)])).catch(() => undefined);
  }

  /** Queues `write` for the next batch; resolves with its result (rejects, after a logged warning, if it fails). */
  #enqueue<T>(write: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queued.push(() => this.#track(write().then(resolve, (err: unknown) => {
        this.#deps.logger.warn({ err }, 'could not record device status');
        reject(err);
      })));
      this.#timer ??= setTimeout(() => this.#flushQueued(), STATUS_FLUSH_MS);
    });
  }

  /** Issues every queued write in this one turn, so each store commits them together. */
  #flushQueued(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const queued = this.#queued;
    this.#queued = [];
    for (const write of queued) write();
  }

  #track(work: Promise<unknown>): void {
    const tracked = work.catch(() => undefined).finally(() => this.#pending.delete(tracked));
    this.#pending.add(tracked);
  }
}
