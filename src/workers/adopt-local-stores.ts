/**
 * A hub that ran as one process kept its registry, commands, state, jobs and
 * logged-out sessions, operator keys, audit log and webhooks in lmdb under its data dir. Started with workers, its
 * state lives in JetStream (the hub's own nats-server); so that no device,
 * secret or queued command is left behind, the first such start copies the
 * lmdb stores into the empty buckets, record by record. Devices lmdb still
 * lists online were left so by the last run: they are copied as offline
 * ("hub restart"). Buckets that hold anything already are a cluster's: then
 * nothing is copied (lmdb is only ever read here, never changed).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { connect } from '@nats-io/transport-node';
import type { Config } from '../config/index.js';
import { openJetStreamStores } from '../cluster/open-jetstream-stores.js';
import { HUB_RESTART_REASON, type DeviceStatus } from '../registry/device-registry.js';
import type { StorageLogger } from '../storage/logger.js';
import type { Bucket } from '../stores/bucket.js';
import { openLmdbStores } from '../stores/open-lmdb-stores.js';
import type { Stores } from '../stores/stores.js';

const COPIED: readonly (keyof Stores)[] = [
  'devices', 'deviceStatus', 'commands', 'commandsDone', 'desired', 'reported', 'desiredVersions', 'jobs', 'jobTargets', 'jobDispatch', 'revokedSessions', 'apiKeys', 'audit', 'alertRules', 'alerts',
  // Webhook endpoints with their secrets, the events still waiting and the failed lists.
  'webhooks', 'webhookOutbox', 'webhookFailed',
];

export async function copyLocalStoresToCluster(config: Config, natsUrl: string, log: StorageLogger): Promise<number> {
  if (!existsSync(path.join(config.dataDir, 'state', 'data.mdb'))) return 0; // never ran as one process
  const nc = await connect({ servers: natsUrl });
  try {
    const cluster = await openJetStreamStores(nc, { namespace: config.clusterName, replicas: 1, logger: log });
    try {
      for await (const _ of cluster.devices.entries()) return 0; // a cluster's already
      const local = await openLmdbStores(config.dataDir);
      let copied = 0;
      try {
        for (const name of COPIED) {
          const from = local[name] as Bucket<unknown>;
          const to = cluster[name] as Bucket<unknown>;
          for await (const { key, value } of from.entries()) {
            await to.put(key, name === 'deviceStatus' ? leftOffline(value as DeviceStatus) : value);
            copied++;
          }
        }
      } finally {
        await local.close();
      }
      if (copied > 0) log.info({ records: copied, dataDir: config.dataDir }, 'the one-process hub\'s lmdb stores copied into the workers\' JetStream (lmdb is kept as it was)');
      return copied;
    } finally {
      await cluster.close();
    }
  } finally {
    await nc.close();
  }
}

function leftOffline(status: DeviceStatus): DeviceStatus {
  return status.online ? { ...status, online: false, offlineReason: HUB_RESTART_REASON } : status;
}
