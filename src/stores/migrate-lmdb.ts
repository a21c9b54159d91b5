/**
 * Moves data an earlier version of the hub wrote into today's layout, once,
 * in one synchronous transaction per environment at open (nothing is
 * connected yet). Each step finds nothing to do on a store it already moved.
 *
 * - The registry kept each device's status inside its record; status is
 *   written by whichever node holds the device, identity by operators, so
 *   they are two records now (`devices` and `device-status`).
 * - Device state was one record of reported and desired documents; the device
 *   writes one and operators the other, so they are two records now
 *   (`reported` and `desired`).
 * - A job's targets were one list; they are chunks now (`job-targets`, keyed
 *   [jobId, chunk]), since a NATS message holds at most 1 MB.
 */
import type { RootDatabase } from 'lmdb';
import { chunkKey, TARGETS_PER_CHUNK } from '../jobs/job-store.js';

type OldDevice = Record<string, unknown> & { id: string; status?: Record<string, unknown> };
type OldState = { reported?: object; desired?: object; version?: number; reportedAt?: number; desiredAt?: number };

export function migrateLmdbLayout(stateEnv: RootDatabase, commandsEnv: RootDatabase): void {
  const devices = stateEnv.openDB<OldDevice, string>({ name: 'devices' });
  const statuses = stateEnv.openDB<object, string>({ name: 'device-status' });
  const inline = [...devices.getRange({})].filter(({ value }) => value?.status !== undefined);
  if (inline.length > 0) {
    stateEnv.transactionSync(() => {
      for (const { key, value } of inline) {
        const { status, ...identity } = value;
        statuses.putSync(key, status!);
        devices.putSync(key, identity);
      }
    });
  }

  const state = commandsEnv.openDB<OldState, string>({ name: 'state' });
  const desired = commandsEnv.openDB<object, string>({ name: 'desired' });
  const reported = commandsEnv.openDB<object, string>({ name: 'reported' });
  const oldTargets = commandsEnv.openDB<string[], string>({ name: 'jobTargets' });
  const targets = commandsEnv.openDB<string[], [string, string]>({ name: 'job-targets' });
  const states = [...state.getRange({})];
  const targetLists = [...oldTargets.getRange({})];
  if (states.length === 0 && targetLists.length === 0) return;
  commandsEnv.transactionSync(() => {
    for (const { key, value } of states) {
      if ((value.version ?? 0) > 0) {
        desired.putSync(key, { desired: value.desired ?? {}, version: value.version, ...(value.desiredAt !== undefined ? { desiredAt: value.desiredAt } : {}) });
      }
      if (value.reportedAt !== undefined || Object.keys(value.reported ?? {}).length > 0) {
        reported.putSync(key, { reported: value.reported ?? {}, ...(value.reportedAt !== undefined ? { reportedAt: value.reportedAt } : {}) });
      }
      state.removeSync(key);
    }
    for (const { key, value } of targetLists) {
      for (let i = 0; i * TARGETS_PER_CHUNK < value.length; i++) {
        targets.putSync(chunkKey(key, i), value.slice(i * TARGETS_PER_CHUNK, (i + 1) * TARGETS_PER_CHUNK));
      }
      oldTargets.removeSync(key);
    }
  });
}
