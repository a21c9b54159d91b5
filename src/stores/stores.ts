/**
 * Every shared store of the hub, as buckets, opened once at start by one
 * backend: lmdb for a hub of one process (open-lmdb-stores.ts), JetStream for
 * a node of a cluster (cluster/open-jetstream-stores.ts). The services above
 * (registry, presence, commands, state, jobs, sessions, leases) take what
 * they need from here and never learn which backend it is.
 *
 * What stays per node in either mode, and so is not here: the spool with its
 * readings, the per-device duplicate windows it commits with them, the dead
 * letters, the live stream's memory and the rate limiters.
 */
import type { CommandRecord } from '../commands/command-store.js';
import type { Dispatch, JobRecord } from '../jobs/job-store.js';
import type { DeviceIdentity, DeviceStatus } from '../registry/device-registry.js';
import type { DesiredRecord, ReportedRecord } from '../state/state-store.js';
import type { Bucket } from './bucket.js';
import type { NodeRecord } from '../cluster/node-directory.js';
import type { LeaseRecord } from '../cluster/leases.js';
import type { ApiKeyRecord } from '../operators/api-key-store.js';
import type { AuditEntry } from '../audit/audit-log.js';
import type { FailedEntry, OutboxEntry, WebhookRecord } from '../webhooks/types.js';
import type { AlertRule, AlertView } from '../alerts/types.js';

export type StoreBackend = 'lmdb' | 'jetstream';

/**
 * A device's duplicate window as one node hands it to the next (cluster mode: takeover, disconnect),
 * and its series names (the PULSEWIRE_MAX_NAMES_PER_DEVICE budget follows the device the same way;
 * absent in records written before).
 */
export type WindowRecord = { seqs: [seq: number, fingerprint: number][]; epoch: number; names?: string[] };

export type Stores = {
  readonly backend: StoreBackend;
  /** Who may connect: secret digests, provisioning, tombstones. */
  readonly devices: Bucket<DeviceIdentity>;
  /** Last known status and presence (which node holds the device, with its claim's epoch). */
  readonly deviceStatus: Bucket<DeviceStatus>;
  /** Unfinished commands, keyed [deviceId, commandId]; command ids sort by creation. */
  readonly commands: Bucket<CommandRecord>;
  /** Finished commands, until the retention prune (commands/command-store.ts says why apart). */
  readonly commandsDone: Bucket<CommandRecord>;
  readonly desired: Bucket<DesiredRecord>;
  readonly reported: Bucket<ReportedRecord>;
  /** The last desired version of a removed device id, so a new one continues above it. */
  readonly desiredVersions: Bucket<number>;
  readonly jobs: Bucket<JobRecord>;
  /** Keyed [jobId, chunk number]: target lists in chunks (a NATS message is at most 1 MB). */
  readonly jobTargets: Bucket<string[]>;
  /** Keyed [jobId, deviceId]. */
  readonly jobDispatch: Bucket<Dispatch>;
  /** Logged-out operator sessions: nonce → when the cookie would have expired. */
  readonly revokedSessions: Bucket<number>;
  /** Operator API keys by id: name, scope, digest of the secret, expiry, revocation. */
  readonly apiKeys: Bucket<ApiKeyRecord>;
  /** The audit log of state-changing operator calls, keyed newest first (audit/audit-log.ts). */
  readonly audit: Bucket<AuditEntry>;
  /** Webhook endpoints by id, their signing secrets included (webhooks/endpoint-store.ts). */
  readonly webhooks: Bucket<WebhookRecord>;
  /** Events waiting for delivery, keyed [endpointId, order key]: an endpoint's queue in order (webhooks/outbox.ts). */
  readonly webhookOutbox: Bucket<OutboxEntry>;
  /** Events whose retries ran out, keyed like the outbox, until replayed or the endpoint is deleted. */
  readonly webhookFailed: Bucket<FailedEntry>;
  /** Alert rules by id (alerts/rule-service.ts). */
  readonly alertRules: Bucket<AlertRule>;
  /** Alerts firing now, keyed [ruleId, `${deviceId}/${series}`]: a record exists exactly while its alert fires. */
  readonly alerts: Bucket<AlertView>;
  /** Undefined with one process, which holds every lease. */
  readonly leases: Bucket<LeaseRecord> | undefined;
  /** Each node's heartbeat; undefined with one process. */
  readonly nodes: Bucket<NodeRecord> | undefined;
  /** Duplicate windows handed between nodes; undefined with one process (the spool keeps them). */
  readonly windows: Bucket<WindowRecord> | undefined;
  /** Resolves once every write issued so far settled, then closes the backend. */
  close(): Promise<void>;
};

/** Resolves once every bucket's writes issued so far have settled. */
export async function flushAll(stores: Stores): Promise<void> {
  const buckets = [
    stores.devices, stores.deviceStatus, stores.commands, stores.commandsDone, stores.desired, stores.reported, stores.desiredVersions,
    stores.jobs, stores.jobTargets, stores.jobDispatch, stores.revokedSessions, stores.apiKeys, stores.audit, stores.webhooks, stores.webhookOutbox, stores.webhookFailed, stores.alertRules, stores.alerts, stores.leases, stores.nodes, stores.windows,
  ];
  await Promise.all(buckets.map((bucket) => bucket?.flush()));
}
