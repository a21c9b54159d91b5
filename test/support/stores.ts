/**
 * The hub's stores on each backend, for the contract suites in test/stores:
 * every suite runs `describe.each(BACKENDS)`, so the lmdb and JetStream
 * implementations answer the same tests and cannot drift apart.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { openLmdbStores } from '../../src/stores/open-lmdb-stores.js';
import type { Stores } from '../../src/stores/stores.js';

export type StoresHandle = {
  stores: Stores;
  /** Closes and opens the same stores again, as a restarted hub would find them. */
  reopen(): Promise<Stores>;
  close(): Promise<void>;
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

export const BACKENDS: Backend[] = [LMDB];
