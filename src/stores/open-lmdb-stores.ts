/**
 * The single-process backend: every store as a bucket on lmdb, in the two
 * environments the hub has always had under its data dir, `state` (the
 * device registry, busy with status writes) and `commands` (commands, device
 * state, jobs, logged-out sessions). lmdb's own files are the truth; leases
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
  const stateEnv = open({ path: path.join(dataDir, 'state') });
  const commandsEnv = open({ path: path.join(dataDir, 'commands') });
  migrateLmdbLayout(stateEnv, commandsEnv);
  const bucket = <V>(env: RootDatabase, name: string) =>
    new LmdbBucket<V>(name, env.openDB<V, string | [string, string]>({ name }) as unknown as Database<V, string | [string, string]>);
  const stores: Stores = {
    backend: 'lmdb',
    devices: bucket(stateEnv, 'devices'),
    deviceStatus: bucket(stateEnv, 'device-status'),
    commands: bucket(commandsEnv, 'commands'),
    desired: bucket(commandsEnv, 'desired'),
    reported: bucket(commandsEnv, 'reported'),
    desiredVersions: bucket(commandsEnv, 'desired-versions'),
    jobs: bucket(commandsEnv, 'jobs'),
    jobTargets: bucket(commandsEnv, 'job-targets'),
    jobDispatch: bucket(commandsEnv, 'jobDispatch'),
    revokedSessions: bucket(commandsEnv, 'revoked-sessions'),
    leases: undefined,
    nodes: undefined,
    windows: undefined,
    async close() {
      await flushAll(stores);
      await Promise.all([stateEnv.close(), commandsEnv.close()]);
    },
  };
  return stores;
}
