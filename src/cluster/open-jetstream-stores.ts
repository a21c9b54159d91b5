/**
 * The cluster backend: every store as a JetStream key-value bucket, shared by
 * all nodes of one cluster (its buckets are named after PULSEWIRE_CLUSTER_NAME,
 * cluster/nats-names.ts). Fleet-sized buckets that are listed and paged
 * (devices and their status) keep a local mirror on each node; buckets whose
 * changes some node must hear of have a watch; the others are read on demand.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { StorageLogger } from '../storage/logger.js';
import type { Bucket } from '../stores/bucket.js';
import { openJetStreamBucket, type JetStreamBucket, type OpenJetStreamBucketOptions } from '../stores/jetstream-bucket.js';
import { flushAll, type Stores } from '../stores/stores.js';
import { bucketName, type StoreName } from './nats-names.js';

export type JetStreamStoresOptions = {
  namespace: string;
  replicas: number;
  logger: StorageLogger;
  /** JetStream request timeout (default 5 s). */
  timeoutMs?: number;
};

/** Which buckets a node mirrors (listed and paged) or watches (reacts to other nodes' writes). */
const SHAPE: Record<StoreName, { mirror?: boolean; watch?: boolean }> = {
  devices: { mirror: true, watch: true },
  deviceStatus: { mirror: true, watch: true },
  commands: { watch: false },
  commandsDone: { watch: false },
  desired: { watch: false },
  reported: { watch: false },
  desiredVersions: { watch: false },
  jobs: { watch: true },
  jobTargets: { watch: false },
  jobDispatch: { watch: false },
  revokedSessions: { watch: false },
  // Every node closes the live streams of a key revoked on any node.
  apiKeys: { watch: true },
  audit: { watch: false },
  // Every node evaluates the rules in force and knows which alerts fire (a device may move to it).
  alertRules: { watch: true },
  alerts: { watch: true },
  leases: { watch: false },
  nodes: { watch: true },
  windows: { watch: false },
  // Every node matches its events against the endpoints; the delivering node reads each endpoint's
  // queue head and is woken by new entries, so both are mirrored (small: endpoints, and events not yet delivered).
  webhooks: { mirror: true, watch: true },
  webhookOutbox: { mirror: true, watch: true },
  webhookFailed: { watch: false },
};

export async function openJetStreamStores(nc: NatsConnection, options: JetStreamStoresOptions): Promise<Stores> {
  const opened: JetStreamBucket<unknown>[] = [];
  const open = async <V>(store: StoreName): Promise<Bucket<V>> => {
    const bucketOptions: OpenJetStreamBucketOptions = {
      ...SHAPE[store], replicas: options.replicas, logger: options.logger, ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
    };
    const bucket = await openJetStreamBucket<V>(nc, bucketName(store, options.namespace), bucketOptions);
    opened.push(bucket as JetStreamBucket<unknown>);
    return bucket;
  };
  const [devices, deviceStatus, commands, commandsDone, desired, reported, desiredVersions, jobs, jobTargets, jobDispatch, revokedSessions, apiKeys, audit, alertRules, alerts, leases, nodes, windows, webhooks, webhookOutbox, webhookFailed] = await Promise.all([
    open<Stores['devices'] extends Bucket<infer V> ? V : never>('devices'),
    open<Stores['deviceStatus'] extends Bucket<infer V> ? V : never>('deviceStatus'),
    open<Stores['commands'] extends Bucket<infer V> ? V : never>('commands'),
    open<Stores['commandsDone'] extends Bucket<infer V> ? V : never>('commandsDone'),
    open<Stores['desired'] extends Bucket<infer V> ? V : never>('desired'),
    open<Stores['reported'] extends Bucket<infer V> ? V : never>('reported'),
    open<number>('desiredVersions'),
    open<Stores['jobs'] extends Bucket<infer V> ? V : never>('jobs'),
    open<string[]>('jobTargets'),
    open<Stores['jobDispatch'] extends Bucket<infer V> ? V : never>('jobDispatch'),
    open<number>('revokedSessions'),
    open<Stores['apiKeys'] extends Bucket<infer V> ? V : never>('apiKeys'),
    open<Stores['audit'] extends Bucket<infer V> ? V : never>('audit'),
    open<Stores['alertRules'] extends Bucket<infer V> ? V : never>('alertRules'),
    open<Stores['alerts'] extends Bucket<infer V> ? V : never>('alerts'),
    open<NonNullable<Stores['leases']> extends Bucket<infer V> ? V : never>('leases'),
    open<NonNullable<Stores['nodes']> extends Bucket<infer V> ? V : never>('nodes'),
    open<NonNullable<Stores['windows']> extends Bucket<infer V> ? V : never>('windows'),
    open<Stores['webhooks'] extends Bucket<infer V> ? V : never>('webhooks'),
    open<Stores['webhookOutbox'] extends Bucket<infer V> ? V : never>('webhookOutbox'),
    open<Stores['webhookFailed'] extends Bucket<infer V> ? V : never>('webhookFailed'),
  ]);
  const stores: Stores = {
    backend: 'jetstream',
    devices, deviceStatus, commands, commandsDone, desired, reported, desiredVersions, jobs, jobTargets, jobDispatch, revokedSessions, apiKeys, audit, alertRules, alerts, webhooks, webhookOutbox, webhookFailed, leases, nodes, windows,
    async close() {
      await flushAll(stores);
      for (const bucket of opened) bucket.close();
    },
  };
  return stores;
}
