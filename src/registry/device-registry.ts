/**
 * The device registry: who may connect, how each device was provisioned, and
 * its last known connection status. Stored in lmdb (a root env at `path`, one
 * named sub-database `devices`, keyed by device id so range reads come back
 * sorted by id and paging needs no secondary index).
 *
 * Writes use lmdb's asynchronous put, which batches everything issued in one
 * event turn into a single commit: a fleet reconnecting after a hub restart
 * costs a few commits, not one fsync per device. lmdb's reads do not see a put
 * until it commits, so read-modify-write (register, updateStatus, ...) goes
 * through a small overlay of uncommitted records (#pending); without it, a
 * disconnect right after a connect could merge into the pre-connect status
 * and lose the connect. (lmdb's async transaction() callbacks would also do
 * it, but they never resolve on this host: see the module report.)
 */

import { open, type Database, type RootDatabase } from 'lmdb';
import { PulsewireError } from '../errors/catalog.js';
import { isValidDeviceId } from '../protocol/limits.js';
import { generateSecret, hashSecret } from './secrets.js';

export type Provisioning = 'registered' | 'enrollment' | 'certificate';

export interface DeviceStatus {
  online: boolean;
  connectedAt?: number;
  lastSeen?: number;
  offlineReason?: string;
  remoteAddress?: string;
  messagesIn: number;
}

export interface DeviceRecord {
  id: string;
  /** SHA-256 hex of the registered secret; the secret itself is never stored. */
  secretDigest?: string;
  /** How the device first came to exist; kept when an operator later re-registers it. */
  provisioning: Provisioning;
  createdAt: number;
  status: DeviceStatus;
  /** A tombstone: removed, and must not re-provision itself (see remove()). */
  revoked?: boolean;
}

export interface ListOptions {
  prefix?: string;
  cursor?: string;
  limit: number;
  online?: boolean;
  /**
   * Live online state (the gateway's sessions) for the `online` filter; the
   * stored status lags a connect or disconnect by one write. Defaults to the
   * stored status.online.
   */
  isOnline?: (id: string) => boolean;
}

export interface DevicePage {
  devices: DeviceRecord[];
  /** Present only when more matching devices follow; pass it back as `cursor`. */
  nextCursor?: string;
}

export interface RegistryOptions {
  now?: () => number;
}

export const MAX_PAGE = 1000;

/** Status reason written on open for devices a crashed hub left online. */
export const HUB_RESTART_REASON = 'hub restart';

/** An uncommitted write; `null` means removed. Wrapped so each write has its own identity. */
type Pending = { record: DeviceRecord | null };

/** How long a batched write waits for others to share its commit. */
const BATCH_MS = 10;

const PREFIX_SYNTAX = /^[A-Za-z0-9._-]{0,64}$/;

export class DeviceRegistry {
  #root: RootDatabase;
  #db: Database<DeviceRecord, string>;
  #now: () => number;
  #pending = new Map<string, Pending>();
  #batch: Promise<void> | undefined;
  #closed = false;

  private constructor(root: RootDatabase, db: Database<DeviceRecord, string>, now: () => number) {
    this.#root = root;
    this.#db = db;
    this.#now = now;
  }

  /**
   * Opens (creating if needed) the registry at `path`. A device still marked
   * online here was online when the previous hub process died without
   * writing its disconnect (crash, kill -9, power loss): nothing can be
   * connected to a hub that is only starting, so those are marked offline
   * with reason 'hub restart'. This assumes one hub process per registry path,
   * which lmdb's single-host design implies anyway.
   */
  static async open(path: string, options: RegistryOptions = {}): Promise<DeviceRegistry> {
    const root = open({ path });
    const db = root.openDB<DeviceRecord, string>({ name: 'devices' });
    const registry = new DeviceRegistry(root, db, options.now ?? Date.now);
    registry.#markLeftOnlineOffline();
    return registry;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#batch; // its writers resume first and issue their puts before the env closes
    await this.#root.close();
  }

  /**
   * Creates the device, or gives an existing one a new secret (the old one
   * stops working at once). The secret is returned this once and never again.
   * Re-registering a removed device (tombstone) revives it with a fresh status.
   */
  async register(id: string): Promise<{ id: string; secret: string }> {
    assertDeviceId(id);
    const secret = generateSecret();
    const existing = this.#read(id);
    const record: DeviceRecord =
      existing && !existing.revoked
        ? { ...existing, secretDigest: hashSecret(secret) }
        : {
            id,
            secretDigest: hashSecret(secret),
            // A revived tombstone keeps its provisioning, so removing it
            // again leaves a tombstone again (see remove()).
            provisioning: existing?.provisioning ?? 'registered',
            createdAt: this.#now(),
            status: { online: false, messagesIn: 0 },
          };
    await this.#write(id, record);
    return { id, secret };
  }

  /**
   * Removes the device; false if there was none. A device that provisioned
   * itself (enrollment key or certificate) would silently re-enrol on its next
   * connection if we just deleted it, so it leaves a revoked tombstone that
   * get/list treat as absent and that only register() lifts. An operator-
   * registered device is deleted outright: without its stored digest nothing
   * can bring it back.
   */
  async remove(id: string): Promise<boolean> {
    const existing = isValidDeviceId(id) ? this.#read(id) : undefined;
    if (!existing || existing.revoked) return false;
    if (existing.provisioning === 'registered') {
      await this.#write(id, null);
    } else {
      await this.#write(id, {
        id,
        provisioning: existing.provisioning,
        createdAt: existing.createdAt,
        status: { online: false, offlineReason: 'removed', messagesIn: existing.status.messagesIn },
        revoked: true,
      });
    }
    return true;
  }

  /** The device, or undefined if unknown, removed, or the id is malformed. */
  get(id: string): DeviceRecord | undefined {
    if (!isValidDeviceId(id)) return undefined;
    const record = this.#read(id);
    return record && !record.revoked ? record : undefined;
  }

  /**
   * The device, registering it first if unknown (zero-touch provisioning by
   * enrollment key or client certificate). Undefined for a tombstone: a
   * removed device stays out until an operator registers it again.
   */
  async ensureProvisioned(id: string, provisioning: 'enrollment' | 'certificate'): Promise<DeviceRecord | undefined> {
    assertDeviceId(id);
    const existing = this.#read(id);
    if (existing) return existing.revoked ? undefined : existing;
    const record: DeviceRecord = {
      id,
      provisioning,
      createdAt: this.#now(),
      status: { online: false, messagesIn: 0 },
    };
    // Batched: a fleet enrolling at once shares commits instead of paying one each.
    await this.#write(id, record, { batched: true });
    return structuredClone(record);
  }

  /**
   * Merges `patch` into the device's status; a key given as undefined is
   * cleared. Going online clears offlineReason unless the patch sets one.
   * No-op for unknown or removed devices (e.g. removed while connected).
   */
  async updateStatus(id: string, patch: Partial<DeviceStatus>): Promise<void> {
    if (!isValidDeviceId(id)) return;
    const record = this.#read(id);
    if (!record || record.revoked) return;
    const status: DeviceStatus = { ...record.status };
    if (patch.online === true && !('offlineReason' in patch)) delete status.offlineReason;
    const fields = status as unknown as Record<string, unknown>;
    for (const [key, value] of Object.entries(patch)) {
      if (value === undefined) delete fields[key];
      else fields[key] = value;
    }
    await this.#write(id, { ...record, status });
  }

  /**
   * One page of devices in id order. The cursor is opaque to callers
   * (base64url of the last id returned), so its format may change later.
   */
  list(options: ListOptions): DevicePage {
    const { prefix = '', online, isOnline } = options;
    const limit = options.limit;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) {
      throw new PulsewireError('PW_ERR_BAD_REQUEST', `limit must be an integer from 1 to ${MAX_PAGE}`);
    }
    if (!PREFIX_SYNTAX.test(prefix)) {
      throw new PulsewireError('PW_ERR_BAD_REQUEST', 'prefix may only contain A-Z a-z 0-9 . _ -');
    }
    // An empty cursor (?cursor=) means the first page, like an absent one.
    const after = options.cursor ? decodeCursor(options.cursor) : undefined;

    // Start at the later of the prefix and the cursor: the cursor's key was
    // returned already, so it is excluded.
    const range =
      after !== undefined && after >= prefix
        ? { start: after, exclusiveStart: true }
        : prefix
          ? { start: prefix }
          : {};

    const devices: DeviceRecord[] = [];
    let nextCursor: string | undefined;
    for (const { key, value } of this.#db.getRange(range)) {
      if (typeof key !== 'string') continue;
      if (!key.startsWith(prefix)) break; // keys are sorted: no later key can match
      const record = this.#overlay(key, value);
      if (!record || record.revoked) continue;
      if (online !== undefined && (isOnline === undefined ? record.status.online : isOnline(key)) !== online) continue;
      // Look one match ahead so an absent nextCursor means "no more".
      if (devices.length === limit) {
        nextCursor = encodeCursor(devices[limit - 1]!.id);
        break;
      }
      devices.push(record);
    }
    return nextCursor === undefined ? { devices } : { devices, nextCursor };
  }

  #read(id: string): DeviceRecord | undefined {
    return this.#overlay(id, this.#db.get(id));
  }

  /** The newest version of a record: an uncommitted write wins over lmdb's committed one. */
  #overlay(id: string, committed: DeviceRecord | undefined): DeviceRecord | undefined {
    const pending = this.#pending.get(id);
    if (!pending) return committed;
    // Cloned so a caller mutating its copy cannot change what gets committed.
    return pending.record === null ? undefined : structuredClone(pending.record);
  }

  /**
   * A batched write waits up to BATCH_MS for others, so that every write of that
   * window is issued in one event turn and lmdb commits them together (a commit
   * per device cost 9% of the hub's CPU while a fleet enrolled). Reads see it
   * at once through #pending. A newer write to the same id issued meanwhile
   * carries this one's change (it read the overlay), so this one is skipped.
   */
  async #write(id: string, record: DeviceRecord | null, options: { batched?: boolean } = {}): Promise<void> {
    const entry: Pending = { record };
    this.#pending.set(id, entry);
    try {
      if (options.batched) {
        await this.#nextBatch();
        if (this.#pending.get(id) !== entry) return;
      }
      await (record === null ? this.#db.remove(id) : this.#db.put(id, record));
    } finally {
      // Only our own entry: a later write to the same id is still in flight.
      if (this.#pending.get(id) === entry) this.#pending.delete(id);
    }
  }

  /** Resolves, for every caller of this window at once, BATCH_MS after the first. */
  #nextBatch(): Promise<void> {
    this.#batch ??= new Promise((resolve) => setTimeout(() => {
      this.#batch = undefined;
      resolve();
    }, BATCH_MS));
    return this.#batch;
  }

  #markLeftOnlineOffline(): void {
    const stale: DeviceRecord[] = [];
    for (const { key, value } of this.#db.getRange({})) {
      if (typeof key === 'string' && value?.status?.online) stale.push(value);
    }
    if (stale.length === 0) return;
    // One synchronous transaction at startup, before anyone can connect.
    this.#db.transactionSync(() => {
      for (const record of stale) {
        this.#db.putSync(record.id, {
          ...record,
          status: { ...record.status, online: false, offlineReason: HUB_RESTART_REASON },
        });
      }
    });
  }
}

function assertDeviceId(id: string): void {
  if (!isValidDeviceId(id)) {
    throw new PulsewireError('PW_ERR_BAD_REQUEST', 'device id must be 1 to 64 characters of A-Z a-z 0-9 . _ -');
  }
}

function encodeCursor(id: string): string {
  return Buffer.from(id, 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): string {
  const id = Buffer.from(cursor, 'base64url').toString('utf8');
  // Buffer.from ignores junk, so require the canonical encoding back.
  if (!isValidDeviceId(id) || encodeCursor(id) !== cursor) {
    throw new PulsewireError('PW_ERR_BAD_REQUEST', 'invalid cursor');
  }
  return id;
}
