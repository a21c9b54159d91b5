/**
 * The hub's one in-process event bus. The gateway publishes what happens to
 * devices; storage, the API, and later the live stream, commands and cluster
 * subscribe. Nobody registers ad-hoc callbacks on another module.
 */
import { EventEmitter } from 'node:events';
import type { AlertView } from '../alerts/types.js';
import type { CommandStatus, CommandView } from '../commands/types.js';
import type { JobView } from '../jobs/types.js';
import type { Reading } from '../protocol/messages.js';
import type { JsonObject } from '../state/types.js';

export type OfflineReason =
  | 'closed by device'
  | 'ping-timeout'
  | 'replaced'
  | 'kicked'
  | 'hub shutdown'
  | 'error'
  /** HTTP fallback (protocol section 8): no request for 2 x pingInterval. */
  | 'poll-timeout'
  /** Cluster mode: the node holding the device stopped beating (presence/node-lost.ts). */
  | 'node-lost';

export type HubEvents = {
  /** An operator registered a device, or gave a known one a new secret. */
  'device.registered': { deviceId: string; at: number };
  /** An operator removed a device: its commands, state and live series are gone. */
  'device.removed': { deviceId: string; at: number };
  'device.online': { deviceId: string; at: number; remoteAddress: string; method: string };
  'device.offline': { deviceId: string; at: number; reason: OfflineReason; detail?: string };
  /** Readings durably accepted (after the spool append committed; InfluxDB follows). */
  'telemetry.accepted': { deviceId: string; readings: Reading[] };
  /** A command was created or changed status (`previous` is undefined on creation). */
  'command.status': { command: CommandView; previous: CommandStatus | undefined };
  /** A fleet job's counts or status changed. */
  'job.progress': { job: JobView };
  /** REPORTED merged into the reported state (the whole new document). */
  'state.reported': { deviceId: string; reported: JsonObject; at: number };
  /** An operator changed the desired state (the whole new document and its version). */
  'state.desired': { deviceId: string; desired: JsonObject; version: number; at: number };
  /** An alert rule's condition held for its duration on one device's series (src/alerts). */
  'alert.firing': { alert: AlertView };
  /** A firing alert's condition cleared (with hysteresis), or its rule or device was removed. */
  'alert.resolved': { alert: AlertView };
};

export class EventBus {
  readonly #emitter = new EventEmitter({ captureRejections: false });

  constructor() {
    // Many subscribers per event are normal here (live streams, cluster, tests).
    this.#emitter.setMaxListeners(0);
  }

  emit<K extends keyof HubEvents>(event: K, payload: HubEvents[K]): void {
    this.#emitter.emit(event, payload);
  }

  on<K extends keyof HubEvents>(event: K, listener: (payload: HubEvents[K]) => void): () => void {
    this.#emitter.on(event, listener);
    return () => this.#emitter.off(event, listener);
  }

  hasListeners(event: keyof HubEvents): boolean {
    return this.#emitter.listenerCount(event) > 0;
  }
}
