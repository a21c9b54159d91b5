/**
 * The hub's stores on each backend, for the contract suites in test/stores:
 * every suite runs `describe.each(BACKENDS)`, so the lmdb and JetStream
 * implementations answer the same tests and cannot drift apart.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { openJetStreamStores } from '../../src/cluster/open-jetstream-stores.js';
import { silentLogger } from '../../src/storage/logger.js';
import { openLmdbStores } from '../../src/stores/open-lmdb-stores.js';
import { connectNats, uniqueNamespace } from './nats.js';
import type { Stores } from '../../src/stores/stores.js';
import type { NatsConnection } from '@nats-io/transport-node';

export type StoresHandle = {
  stores: Stores;
  /** Closes and opens the same stores again, as a restarted hub would find them. */
  reopen(): Promise<Stores>;
  close(): Promise<void>;
  /** JetStream only: the connection and namespace the stores live in, for a bus bridge between the test's nodes. */
  nats?: { nc: NatsConnection; namespace: string };
};

export type Backend = { name: string; open(): Promise<StoresHandle> };

export const LMDB: Backend = {
  name: 'lmdb',
  async open() {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pulsewire-stores-'));
    const handle: StoresHandle = {
      stores: await openLmdbStores(dir),
      async reopen() {
        await handle.stores.close();
        handle.stores = await openLmdbStores(dir);
        return handle.stores;
      },
      async close() {
        await handle.stores.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
    return handle;
  },
};

/** The cluster's stores on the suite's nats-server, in a namespace of their own. */
export const JETSTREAM: Backend = {
  name: 'jetstream',
  async open() {
    const nc = await connectNats();
    const namespace = uniqueNamespace('s');
    const openStores = () => openJetStreamStores(nc, { namespace, replicas: 1, logger: silentLogger, timeoutMs: 10_000 });
    const handle: StoresHandle = {
      stores: await openStores(),
      async reopen() {
        await handle.stores.close();
        handle.stores = await openStores();
        return handle.stores;
      },
      async close() {
        await handle.stores.close();
        await nc.close();
      },
      nats: { nc, namespace },
    };
    return handle;
  },
};

export const BACKENDS: Backend[] = [LMDB, JETSTREAM];
