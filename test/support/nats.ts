/**
 * NATS for tests: connections to the suite's nats-server (nats-global-setup.ts),
 * a namespace per test file so files share the server without sharing buckets,
 * a private server for a file that restarts it, and one factory that opens a
 * Bucket of each kind for the contract suite.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { inject } from 'vitest';
import { startManagedNatsServer, type ManagedNatsServer } from '../../src/cluster/managed-nats-server.js';
import type { Bucket } from '../../src/stores/bucket.js';
import { JetStreamBucket, openJetStreamBucket, type OpenJetStreamBucketOptions } from '../../src/stores/jetstream-bucket.js';
import { openEnvironment } from '../../src/stores/open-lmdb-stores.js';

/** A NATS namespace (bucket name prefix) no other test file or run uses. */
export function uniqueNamespace(tag = 't'): string {
  return `${tag}-${randomUUID().slice(0, 8)}`;
}

/**
 * A client that keeps reconnecting (as a hub node would) with short waits, so
 * a restarted server is found again quickly. Close it with `nc.close()`.
 */
export function connectNats(url: string = inject('natsUrl')): Promise<NatsConnection> {
  return connect({ servers: url, maxReconnectAttempts: -1, reconnectTimeWait: 100, reconnectJitter: 50 });
}

/** A nats-server of this test file alone (for tests that restart or stop it), with its data dir. */
export async function startOwnNatsServer(): Promise<{ server: ManagedNatsServer; stop(): Promise<void> }> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'pulsewire-test-own-nats-'));
  const server = await startManagedNatsServer({ dataDir });
  return {
    server,
    async stop() {
      await server.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export type BucketKind = 'lmdb' | 'jetstream' | 'jetstream-mirror';
export const BUCKET_KINDS: readonly BucketKind[] = ['lmdb', 'jetstream', 'jetstream-mirror'];

/** Opens buckets of one kind; `otherNode` is the same bucket as another hub node sees it (JetStream only). */
export interface BucketFactory {
  readonly kind: BucketKind;
  open<V>(name: string): Promise<Bucket<V>>;
  /** The bucket `name` through a second NATS connection: another node. Undefined for lmdb (one process). */
  readonly otherNode: (<V>(name: string) => Promise<Bucket<V>>) | undefined;
  close(): Promise<void>;
}

export async function bucketFactory(kind: BucketKind, options: { natsUrl?: string } = {}): Promise<BucketFactory> {
  return kind === 'lmdb' ? lmdbFactory() : jetStreamFactory(kind, options.natsUrl ?? inject('natsUrl'));
}

async function lmdbFactory(): Promise<BucketFactory> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pulsewire-test-lmdb-bucket-'));
  const environment = openEnvironment(dir);
  return {
    kind: 'lmdb',
    otherNode: undefined,
    async open<V>(name: string) {
      return environment.bucket<V>(name);
    },
    async close() {
      await environment.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function jetStreamFactory(kind: BucketKind, url: string): Promise<BucketFactory> {
  const namespace = uniqueNamespace(kind === 'jetstream-mirror' ? 'm' : 'j');
  const bucketOptions: OpenJetStreamBucketOptions = { mirror: kind === 'jetstream-mirror', timeoutMs: 10_000 };
  const [node, other] = await Promise.all([connectNats(url), connectNats(url)]);
  const opened: JetStreamBucket<unknown>[] = [];
  const openOn = async <V>(nc: NatsConnection, name: string): Promise<Bucket<V>> => {
    const bucket = await openJetStreamBucket<V>(nc, `${namespace}-${name}`, bucketOptions);
    opened.push(bucket as JetStreamBucket<unknown>);
    return bucket;
  };
  return {
    kind,
    open: (name) => openOn(node, name),
    otherNode: (name) => openOn(other, name),
    async close() {
      for (const bucket of opened) bucket.close();
      await Promise.all([node.close(), other.close()]);
    },
  };
}
