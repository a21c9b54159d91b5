/**
 * The single-process backend: every store as a bucket on lmdb, in the two
 * environments the hub has always had under its data dir, `state` (the
 * device registry, busy with status writes) and `commands` (commands, device
 * state, jobs, logged-out sessions, operator keys, the audit log, alert rules and firing alerts). lmdb's own files are the truth; leases
 * are not needed (one process holds every one) and duplicate windows stay in
 * the spool, which commits them with the readings.
 *
 * Data written by an earlier version in an older layout is moved to today's
 * once, at open (migrate-lmdb.ts), before anything reads it.
 */
import { open, type Database, type RootDatabase } from 'lmdb';
import path from 'node:path';
import { LmdbBucket } from './lmdb-bucket.js';
import { migrateLmdbLayout } from './migrate-lmdb.js';
import { flushAll, type Stores } from './stores.js';

export async function openLmdbStores(dataDir: string): Promise<Stores> {
  const stateEnv = openEnvironment(path.join(dataDir, 'state'));
  const commandsEnv = openEnvironment(path.join(dataDir, 'commands'));
  // Its own environment: the outbox is written at every event and deleted at every delivery.
  const webhooksEnv = openEnvironment(path.join(dataDir, 'webhooks'));
  migrateLmdbLayout(stateEnv.root, commandsEnv.root);
  const stores: Stores = {
    backend: 'lmdb',
    devices: stateEnv.bucket('devices'),
    deviceStatus: stateEnv.bucket('device-status'),
    commands: commandsEnv.bucket('commands'),
    commandsDone: commandsEnv.bucket('commands-done'),
    desired: commandsEnv.bucket('desired'),
    reported: commandsEnv.bucket('reported'),
    desiredVersions: commandsEnv.bucket('desired-versions'),
    jobs: commandsEnv.bucket('jobs'),
    jobTargets: commandsEnv.bucket('job-targets'),
    jobDispatch: commandsEnv.bucket('jobDispatch'),
    revokedSessions: commandsEnv.bucket('revoked-sessions'),
    apiKeys: commandsEnv.bucket('api-keys'),
    audit: commandsEnv.bucket('audit'),
    webhooks: webhooksEnv.bucket('endpoints'),
    webhookOutbox: webhooksEnv.bucket('outbox'),
    webhookFailed: webhooksEnv.bucket('failed'),
    alertRules: commandsEnv.bucket('alert-rules'),
    alerts: commandsEnv.bucket('alerts'),
    leases: undefined,
    nodes: undefined,
    windows: undefined,
    async close() {
      await flushAll(stores);
      await Promise.all([stateEnv.close(), commandsEnv.close(), webhooksEnv.close()]);
    },
  };
  return stores;
}

/** One lmdb environment at `dir`, handing out its sub-databases as buckets (the stores above; the bucket contract suite). */
export function openEnvironment(dir: string): { root: RootDatabase; bucket<V>(name: string): LmdbBucket<V>; close(): Promise<void> } {
  const root = open({ path: dir, maxDbs: 64 });
  return {
    root,
    bucket: <V>(name: string) => new LmdbBucket<V>(name, root.openDB({ name }) as unknown as Database<V, string | [string, string]>),
    close: () => root.close(),
  };
}
