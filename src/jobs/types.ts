/**
 * Fleet jobs (issue 6): one command rolled out to many devices at a bounded
 * rate, with progress, an abort threshold and cancellation. These are the
 * API's JSON shapes, also carried by `job.progress` events and the live
 * stream. docs/jobs.md explains every field.
 */
import type { CommandStatus } from '../commands/types.js';
import type { JsonValue } from '../state/types.js';

/**
 * in-progress: rolling out, or waiting for dispatched commands to end.
 * completed: every target got a command that reached a final state, or was skipped.
 * aborted: failures crossed the abort threshold. cancelled: an operator cancelled it.
 */
export const JOB_STATUSES = ['in-progress', 'completed', 'aborted', 'cancelled'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
export const isJobFinal = (status: JobStatus): boolean => status !== 'in-progress';

/** Final command states that count as failures for the abort rule (cancelled does not). */
export const FAILURE_STATUSES: ReadonlySet<CommandStatus> = new Set(['failed', 'rejected', 'timed-out', 'expired']);

export type JobCommand = { name: string; args?: JsonValue; ttlMs?: number; timeoutMs?: number };
/** Exactly one of ids or prefix (an empty prefix is the whole fleet, said explicitly). */
export type JobTarget = { ids?: string[]; prefix?: string; onlineOnly?: boolean };

export type NewJob = {
  command: JobCommand;
  target: JobTarget;
  rolloutPerSecond?: number;
  abortThresholdPct?: number;
  abortMinFinished?: number;
};

/** Defaults a request may leave out (documented in docs/jobs.md). */
export const JOB_DEFAULTS = {
  rolloutPerSecond: 10,
  /** 100 means never abort: more than 100% cannot fail. */
  abortThresholdPct: 100,
  abortMinFinished: 10,
} as const;

/** Most devices one job may target: bounds its memory and its start-up reload. */
export const MAX_JOB_TARGETS = 100_000;

export type JobView = {
  id: string;
  status: JobStatus;
  command: JobCommand;
  target: JobTarget;
  rolloutPerSecond: number;
  abortThresholdPct: number;
  abortMinFinished: number;
  /** Devices the job targets, fixed when it was created. */
  total: number;
  /** Commands created so far (one per device at most). */
  dispatched: number;
  /** Targets that got no command (offline at their turn with onlineOnly, removed, queue full). */
  skipped: number;
  /** The job's commands by their current status. */
  counts: Partial<Record<CommandStatus, number>>;
  /** ISO 8601 times. */
  createdAt: string;
  completedAt?: string;
  /** Why it was aborted or cancelled. */
  reason?: string;
};
