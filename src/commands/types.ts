/**
 * What operators, the live stream and Node-RED see of a command: the API's
 * JSON shape, also carried by `command.status` events. Arguments and results
 * are in the JSON form of docs/json-cbor.md (byte strings, big integers and
 * forced floats have a tagged-object spelling there).
 */
import type { JsonValue } from '../state/types.js';

export const COMMAND_STATUSES = [
  'queued', 'sent', 'received', 'succeeded', 'failed', 'rejected', 'expired', 'timed-out', 'cancelled',
] as const;
export type CommandStatus = (typeof COMMAND_STATUSES)[number];

/** Final states: nothing changes a command after it reached one. */
export const FINAL_COMMAND_STATUSES: ReadonlySet<CommandStatus> = new Set([
  'succeeded', 'failed', 'rejected', 'expired', 'timed-out', 'cancelled',
]);

export type CommandView = {
  id: string;
  deviceId: string;
  name: string;
  args: JsonValue;
  status: CommandStatus;
  /** The device's RESULT payload (or the hub's reason for expired/timed-out/cancelled). */
  result?: JsonValue;
  /** ISO 8601 times. */
  createdAt: string;
  sentAt?: string;
  completedAt?: string;
  ttlMs: number;
  timeoutMs: number;
  /** Set when the command was created by a fleet job. */
  jobId?: string;
};
