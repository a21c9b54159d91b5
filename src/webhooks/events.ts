/**
 * Which bus events become webhook events, and their `data`: a pure mapping,
 * tested on its own. `command.final` is a `command.status` that reached a
 * final status; `job.finished` a `job.progress` whose job's status is final.
 * `once` names events that are one per thing (a command ends once, a job
 * finishes once) so the recorder can drop a repeat of one (a job's final
 * progress may be counted again after it finished).
 */
import type { HubEvents } from '../events/bus.js';
import { FINAL_COMMAND_STATUSES } from '../commands/types.js';
import { isJobFinal } from '../jobs/types.js';
import type { WebhookEventType, WebhookRecord } from './types.js';

/** The bus events the recorder listens to. */
export const SOURCE_EVENTS = ['device.online', 'device.offline', 'command.status', 'job.progress', 'alert.firing', 'alert.resolved'] as const satisfies readonly (keyof HubEvents)[];
export type SourceEvent = (typeof SOURCE_EVENTS)[number];

export type Occurrence = {
  type: WebhookEventType;
  /** The device it is about; undefined for events about no single device (job.finished). */
  deviceId: string | undefined;
  /** Epoch ms when it happened. */
  at: number;
  data: Record<string, unknown>;
  once?: string;
};

export function toOccurrence<K extends SourceEvent>(event: K, payload: HubEvents[K], now: number): Occurrence | undefined {
  switch (event) {
    case 'device.online': {
      const p = payload as HubEvents['device.online'];
      return { type: 'device.online', deviceId: p.deviceId, at: p.at, data: { deviceId: p.deviceId, at: iso(p.at), remoteAddress: p.remoteAddress, method: p.method } };
    }
    case 'device.offline': {
      const p = payload as HubEvents['device.offline'];
      return {
        type: 'device.offline', deviceId: p.deviceId, at: p.at,
        data: { deviceId: p.deviceId, at: iso(p.at), reason: p.reason, ...(p.detail !== undefined ? { detail: p.detail } : {}) },
      };
    }
    case 'command.status': {
      const { command } = payload as HubEvents['command.status'];
      if (!FINAL_COMMAND_STATUSES.has(command.status)) return undefined;
      const at = Date.parse(command.completedAt ?? '') || now;
      return { type: 'command.final', deviceId: command.deviceId, at, data: { command }, once: `command/${command.deviceId}/${command.id}` };
    }
    case 'job.progress': {
      const { job } = payload as HubEvents['job.progress'];
      if (!isJobFinal(job.status)) return undefined;
      return { type: 'job.finished', deviceId: undefined, at: now, data: { job }, once: `job/${job.id}` };
    }
    case 'alert.firing':
    case 'alert.resolved': {
      const { alert } = payload as HubEvents['alert.firing'];
      const at = event === 'alert.resolved' ? alert.resolvedAt ?? now : alert.firingSince;
      return { type: event, deviceId: alert.deviceId, at, data: { alert } };
    }
    default:
      return undefined;
  }
}

/** Whether `endpoint` wants `occurrence`: not paused, its type, and its device filter when it is about a device. */
export function wants(endpoint: WebhookRecord, occurrence: Occurrence): boolean {
  if (endpoint.paused || !endpoint.events.includes(occurrence.type)) return false;
  const device = occurrence.deviceId;
  if (device === undefined) return true;
  if (endpoint.deviceIds === undefined && endpoint.devicePrefix === undefined) return true;
  // Either filter lets the device through: ids name some devices, a prefix a family of them.
  return (endpoint.deviceIds?.includes(device) ?? false) || (endpoint.devicePrefix !== undefined && device.startsWith(endpoint.devicePrefix));
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
