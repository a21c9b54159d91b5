/**
 * The frames of the live stream (docs/live-stream.md) as the page reads them,
 * and the operator API shapes it uses. Command and state shapes are the hub's
 * own types (type-only imports, erased from the bundle).
 */
export type { AlertView } from '../../../src/alerts/types.js';
export type { CommandStatus, CommandView } from '../../../src/commands/types.js';
export type { DeviceStateView, JsonObject, JsonValue } from '../../../src/state/types.js';
import type { AlertView } from '../../../src/alerts/types.js';
import type { CommandView } from '../../../src/commands/types.js';
import type { JsonObject } from '../../../src/state/types.js';

export type ReadingKind = 'value' | 'text' | 'flag' | 'data' | 'sum';

export type LiveReading = { device: string; name: string; unit?: string; t: number; kind: ReadingKind; v: number | string | boolean };
export type LiveDeviceStatus = { device: string; online: boolean; at: number; reason: string; removed?: true };
export type LiveStateChange =
  | { device: string; kind: 'reported'; state: JsonObject; at: number }
  | { device: string; kind: 'desired'; state: JsonObject; version: number; at: number };

export type HelloFrame = { type: 'hello'; version: number; tickMs: number };
export type SnapshotFrame = {
  type: 'snapshot';
  seq: number;
  counts: { online: number; offline: number };
  devices: LiveDeviceStatus[];
  latest: LiveReading[];
  /** The alerts firing now (absent from a hub before alert rules). */
  alerts?: AlertView[];
};
export type EventsFrame = {
  type: 'events';
  seq: number;
  readings?: LiveReading[];
  status?: LiveDeviceStatus[];
  commands?: CommandView[];
  state?: LiveStateChange[];
  jobs?: unknown[];
  /** Alerts that fired or resolved (`state`). */
  alerts?: AlertView[];
  conflated?: boolean;
};
export type ErrorFrame = { type: 'error'; code: string; message: string };
export type LiveFrame = HelloFrame | SnapshotFrame | EventsFrame | ErrorFrame;

export type Subscription = { devices?: string[]; names?: string[] };

/** GET /v1/devices/:id (src/api/devices.ts). */
export type DeviceView = {
  id: string;
  provisioning: string;
  createdAt: string;
  online: boolean;
  connectedAt: string | null;
  lastSeen: string | null;
  offlineReason: string | null;
  remoteAddress: string | null;
  messagesIn: number;
};

/** GET /v1/devices/:id/telemetry (src/api/history.ts). */
export type HistoryView = { deviceId: string; name: string; agg: string; field?: string; every: string; from: string; to: string; points: { time: string; value: number }[] };
/** GET /v1/devices/:id/series: what the device has stored, so charts exist before any live reading. */
export type SeriesListView = { deviceId: string; series: { name: string; kind: ReadingKind; unit?: string; time: string; value: number | string | boolean }[] };
