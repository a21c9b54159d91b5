/**
 * The hub's one in-process event bus. The gateway publishes what happens to
 * devices; storage, the API, and later the live stream, commands and cluster
 * subscribe. Nobody registers ad-hoc callbacks on another module.
 */
import { EventEmitter } from 'node:events';
import type { Reading } from '../protocol/messages.js';

export type OfflineReason =
  | 'closed by device'
  | 'ping-timeout'
  | 'replaced'
  | 'kicked'
  | 'hub shutdown'
  | 'error';

export type HubEvents = {
  'device.online': { deviceId: string; at: number; remoteAddress: string; method: string };
  'device.offline': { deviceId: string; at: number; reason: OfflineReason; detail?: string };
  /** Readings durably accepted (after the spool append committed; InfluxDB follows). */
  'telemetry.accepted': { deviceId: string; readings: Reading[] };
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
