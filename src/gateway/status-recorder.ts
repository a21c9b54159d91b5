/**
 * Records every online/offline change of a device in the four places an
 * operator looks: the registry (GET /v1/devices), InfluxDB (`device_status`),
 * the event bus (live views) and the log. Storage failures here are logged,
 * never thrown into the socket path: a status point is worth less than
 * keeping the gateway running.
 */
import type { EventBus, OfflineReason } from '../events/bus.js';
import type { DeviceRegistry } from '../registry/device-registry.js';
import { statusPoint } from '../storage/schema.js';
import type { DeviceRuntime, DeviceSessionHandle } from './device-runtime.js';

type Logger = { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };

export type StatusRecorderDeps = {
  registry: DeviceRegistry;
  /** The spool, like telemetry: a status point waits there during an InfluxDB outage instead of blocking shutdown. */
  sink: { append(deviceId: string, points: ReturnType<typeof statusPoint>[]): Promise<void> };
  bus: EventBus;
  logger: Logger;
};

export class StatusRecorder {
  readonly #deps: StatusRecorderDeps;
  readonly #pending = new Set<Promise<unknown>>();

  constructor(deps: StatusRecorderDeps) {
    this.#deps = deps;
  }

  online(runtime: DeviceRuntime, session: DeviceSessionHandle, method: string, tookOver: boolean): void {
    const { registry, bus, logger } = this.#deps;
    const at = session.connectedAt;
    runtime.lastSeen = at;
    runtime.messagesInBefore ??= registry.get(runtime.deviceId)?.status.messagesIn ?? 0;
    logger.info({ deviceId: runtime.deviceId, remoteAddress: session.remoteAddress, method, tookOver }, 'device online');
    this.#track(registry.updateStatus(runtime.deviceId, {
      online: true, connectedAt: at, lastSeen: at, remoteAddress: session.remoteAddress, offlineReason: undefined,
    }));
    // A takeover is not an offline/online change: the device never stopped being online.
    if (!tookOver) this.#point(runtime.deviceId, true, 'connected', at);
    bus.emit('device.online', { deviceId: runtime.deviceId, at, remoteAddress: session.remoteAddress, method });
  }

  offline(runtime: DeviceRuntime, reason: OfflineReason, detail: string | undefined): void {
    const { registry, bus, logger } = this.#deps;
    const at = Date.now();
    logger.info({ deviceId: runtime.deviceId, reason, detail }, 'device offline');
    this.#track(registry.updateStatus(runtime.deviceId, {
      online: false, lastSeen: runtime.lastSeen, offlineReason: reason, messagesIn: runtime.messagesInTotal,
    }));
    this.#point(runtime.deviceId, false, reason, at);
    bus.emit('device.offline', { deviceId: runtime.deviceId, at, reason, ...(detail ? { detail } : {}) });
  }

  /** Waits for every status write started so far (shutdown). */
  async flush(): Promise<void> {
    await Promise.allSettled([...this.#pending]);
  }

  #point(deviceId: string, online: boolean, reason: string, atMs: number): void {
    this.#track(this.#deps.sink.append(deviceId, [statusPoint(deviceId, online, reason, atMs * 1000)]));
  }

  #track(work: Promise<unknown>): void {
    const tracked = work.catch((err: unknown) => {
      this.#deps.logger.warn({ err }, 'could not record device status');
    }).finally(() => this.#pending.delete(tracked));
    this.#pending.add(tracked);
  }
}
