/**
 * The device registry: who may connect and how each device was provisioned
 * (bucket `devices`), read together with its last known connection status
 * (bucket `device-status`, written by presence/presence.ts). The two are
 * separate records because different writers race on them: operators on
 * identity, whichever node holds the device on status.
 *
 * Every change is an expected-revision update, so two nodes registering or
 * enrolling the same device at once cannot both win: the loser reads again.
 */
import { PulsewireError } from '../errors/catalog.js';
import { isValidDeviceId } from '../protocol/limits.js';
import type { Bucket } from '../stores/bucket.js';
import { generateSecret, hashSecret } from './secrets.js';

export type Provisioning = 'registered' | 'enrollment' | 'certificate';

export interface DeviceIdentity {
  id: string;
  /** SHA-256 hex of the registered secret; the secret itself is never stored. */
  secretDigest?: string;
  /** How the device first came to exist; kept when an operator later re-registers it. */
  provisioning: Provisioning;
  createdAt: number;
  /** A tombstone: removed, and must not re-provision itself (see remove()). */
  revoked?: boolean;
  /**
   * Counts secret rotations: a session authenticated under an older count is
   * closed with 4001 ("authenticate again"), on whichever node holds it
   * (gateway/credential-watch.ts). Absent: 0.
   */
  credentialsVersion?: number;
  /** The secret replaced by the last rotation, still accepted until previousSecretUntil (a grace period). */
  previousSecretDigest?: string;
  previousSecretUntil?: number;
  /** From this time (epoch ms) the enrollment-derived secret no longer works for this device; absent: it works. */
  enrollmentEndsAt?: number;
  /** Disabled by an operator: refused at the handshake (403), queue and state kept. */
  disabled?: boolean;
  /** Which enrollment key (fingerprint, registry/secrets.ts) the device last authenticated with. */
  enrollmentKeyId?: string;
}

export type RotationOptions = {
  /** Keep the enrollment-derived secret working for this device (default: it stops working). */
  keepEnrollment?: boolean;
  /** How long the replaced secret (registered or enrollment-derived) keeps working too, in ms (default 0). */
  graceMs?: number;
};

export interface DeviceStatus {
  online: boolean;
  connectedAt?: number;
  lastSeen?: number;
  offlineReason?: string;
  remoteAddress?: string;
  messagesIn: number;
  /** The node whose connection the status describes (presence). */
  node?: string;
  /** Counts the device's claims: a node's "offline" only counts for its own claim. */
  epoch?: number;
}

export interface DeviceRecord extends DeviceIdentity {
  status: DeviceStatus;
}

export interface ListOptions {
  prefix?: string;
  cursor?: string;
  limit: number;
  online?: boolean;
  /** Live online state for the `online` filter (presence/online-devices.ts); defaults to the stored status. */
  isOnline?: (record: DeviceRecord) => boolean;
  /** Only devices this says yes to (the API's further filters). */
  where?: (record: DeviceRecord) => boolean;
}

export interface DevicePage {
  devices: DeviceRecord[];
  /** Present only when more matching devices follow; pass it back as `cursor`. */
  nextCursor?: string;
}

export const MAX_PAGE = 1000;

/** Status reason written at start for devices a crashed hub left online. */
export const HUB_RESTART_REASON = 'hub restart';

export const NEVER_CONNECTED: Readonly<DeviceStatus> = Object.freeze({ online: false, messagesIn: 0 });

const PREFIX_SYNTAX = /^[A-Za-z0-9._-]{0,64}$/;

export class DeviceRegistry {
  readonly #devices: Bucket<DeviceIdentity>;
  readonly #statuses: Bucket<DeviceStatus>;
  readonly #now: () => number;

  constructor(buckets: { devices: Bucket<DeviceIdentity>; deviceStatus: Bucket<DeviceStatus> }, options: { now?: () => number } = {}) {
    this.#devices = buckets.devices;
    this.#statuses = buckets.deviceStatus;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Creates the device, or gives an existing one a new secret (a rotation:
   * the old one stops working, at once or after `graceMs`, and open sessions
   * are told to authenticate again). Unless `keepEnrollment`, a rotation
   * also ends the secret derived from the enrollment key for this device
   * (after the same grace): an operator who issues a secret means that one. The
   * secret is returned this once and never again. Re-registering a removed
   * device (tombstone) revives it with a fresh status.
   */
  async register(id: string, options: RotationOptions = {}): Promise<{ id: string; secret: string; rotated: boolean }> {
    assertDeviceId(id);
    const secret = generateSecret();
    const now = this.#now();
    const graceMs = options.graceMs ?? 0;
    for (;;) {
      const existing = await this.#devices.get(id);
      const live = existing && !existing.value.revoked;
      // Only a rotation ends enrollment: a device an operator creates keeps the behaviour it always had.
      const enrollmentEndsAt = !live ? undefined
        : options.keepEnrollment ? existing.value.enrollmentEndsAt
        : Math.min(existing.value.enrollmentEndsAt ?? Infinity, now + graceMs);
      let identity: DeviceIdentity;
      if (live) {
        const { previousSecretDigest: _d, previousSecretUntil: _u, enrollmentEndsAt: _e, ...kept } = existing.value;
        const old = existing.value.secretDigest;
        identity = {
          ...kept,
          secretDigest: hashSecret(secret),
          credentialsVersion: (existing.value.credentialsVersion ?? 0) + 1,
          ...(graceMs > 0 && old !== undefined ? { previousSecretDigest: old, previousSecretUntil: now + graceMs } : {}),
        };
      } else {
        identity = {
          id,
          secretDigest: hashSecret(secret),
          // A revived tombstone keeps its provisioning, so removing it again leaves a tombstone again.
          provisioning: existing?.value.provisioning ?? 'registered',
          createdAt: now,
        };
      }
      if (enrollmentEndsAt !== undefined) identity = { ...identity, enrollmentEndsAt };
      const stored = existing ? await this.#devices.update(id, identity, existing.revision) : await this.#devices.create(id, identity);
      if (stored === undefined) continue; // changed meanwhile: read again
      // A revived tombstone (or a deleted device's leftover) starts from a fresh status.
      if (!live) await this.#resetStatus(id, NEVER_CONNECTED, { ifPresent: true });
      return { id, secret, rotated: live === true };
    }
  }

  /** Disables or enables the device; its identity after, or undefined when unknown (or removed). */
  async setDisabled(id: string, disabled: boolean): Promise<DeviceIdentity | undefined> {
    return this.#change(id, (identity) => {
      const { disabled: _, ...rest } = identity;
      return disabled ? { ...rest, disabled: true } : rest;
    });
  }

  /** Records which enrollment key the device authenticated with (written only when it changed). */
  async noteEnrollmentKey(id: string, keyId: string): Promise<void> {
    await this.#change(id, (identity) => (identity.enrollmentKeyId === keyId ? undefined : { ...identity, enrollmentKeyId: keyId }));
  }

  /** A revision-checked change of a live identity; `change` returning undefined writes nothing. */
  async #change(id: string, change: (identity: DeviceIdentity) => DeviceIdentity | undefined): Promise<DeviceIdentity | undefined> {
    if (!isValidDeviceId(id)) return undefined;
    for (;;) {
      const existing = await this.#devices.get(id);
      if (!existing || existing.value.revoked) return undefined;
      const next = change(existing.value);
      if (next === undefined) return existing.value;
      if ((await this.#devices.update(id, next, existing.revision)) !== undefined) return next;
    }
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
    if (!isValidDeviceId(id)) return false;
    for (;;) {
      const existing = await this.#devices.get(id);
      if (!existing || existing.value.revoked) return false;
      const { provisioning, createdAt } = existing.value;
      const done = provisioning === 'registered'
        ? await this.#devices.delete(id, existing.revision)
        : (await this.#devices.update(id, { id, provisioning, createdAt, revoked: true }, existing.revision)) !== undefined;
      if (!done) continue;
      const status = await this.#statuses.get(id);
      // A new epoch: the node holding the device must not write "online" or "offline" over this.
      await this.#resetStatus(id, { online: false, offlineReason: 'removed', messagesIn: status?.value.messagesIn ?? 0 });
      return true;
    }
  }

  /** The device with its status, or undefined if unknown, removed, or the id is malformed. */
  async get(id: string): Promise<DeviceRecord | undefined> {
    const identity = await this.identity(id);
    if (!identity) return undefined;
    return { ...identity, status: (await this.#statuses.get(id))?.value ?? { ...NEVER_CONNECTED } };
  }

  /** The device's identity alone (the handshake needs no status), or undefined like get(). */
  async identity(id: string): Promise<DeviceIdentity | undefined> {
    if (!isValidDeviceId(id)) return undefined;
    const entry = await this.#devices.get(id);
    return entry && !entry.value.revoked ? entry.value : undefined;
  }

  /**
   * The device, registering it first if unknown (zero-touch provisioning by
   * enrollment key or client certificate). Undefined for a tombstone: a
   * removed device stays out until an operator registers it again.
   */
  async ensureProvisioned(id: string, provisioning: 'enrollment' | 'certificate', enrollmentKeyId?: string): Promise<DeviceIdentity | undefined> {
    assertDeviceId(id);
    for (;;) {
      const existing = await this.#devices.get(id);
      if (existing) return existing.value.revoked ? undefined : existing.value;
      // The enrollment key is recorded with the first write, so a fleet enrolling costs one write per device, not two.
      const identity: DeviceIdentity = { id, provisioning, createdAt: this.#now(), ...(enrollmentKeyId !== undefined ? { enrollmentKeyId } : {}) };
      if ((await this.#devices.create(id, identity)) !== undefined) {
        // A device deleted earlier left its last status (for its epoch): a new one starts fresh.
        await this.#resetStatus(id, NEVER_CONNECTED, { ifPresent: true });
        return { ...identity };
      }
      // Another connection (here or on another node) enrolled it first: read theirs.
    }
  }

  /**
   * One page of devices in id order. The cursor is opaque to callers
   * (base64url of the last id returned), so its format may change later.
   */
  async list(options: ListOptions): Promise<DevicePage> {
    const { prefix = '', online, isOnline, limit } = options;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) {
      throw new PulsewireError('PW_ERR_BAD_REQUEST', `limit must be an integer from 1 to ${MAX_PAGE}`);
    }
    if (!PREFIX_SYNTAX.test(prefix)) {
      throw new PulsewireError('PW_ERR_BAD_REQUEST', 'prefix may only contain A-Z a-z 0-9 . _ -');
    }
    // An empty cursor (?cursor=) means the first page, like an absent one.
    const after = options.cursor ? decodeCursor(options.cursor) : undefined;
    const devices: DeviceRecord[] = [];
    let nextCursor: string | undefined;
    for await (const { value: identity } of this.#devices.entries({ prefix, ...(after !== undefined ? { after } : {}) })) {
      if (identity.revoked) continue;
      const status = (await this.#statuses.get(identity.id))?.value ?? { ...NEVER_CONNECTED };
      const record = { ...identity, status };
      if (online !== undefined && (isOnline === undefined ? status.online : isOnline(record)) !== online) continue;
      if (options.where && !options.where(record)) continue;
      // Look one match ahead so an absent nextCursor means "no more".
      if (devices.length === limit) {
        nextCursor = encodeCursor(devices[limit - 1]!.id);
        break;
      }
      devices.push(record);
    }
    return nextCursor === undefined ? { devices } : { devices, nextCursor };
  }

  /**
   * Replaces the device's status with a new epoch, whoever holds it (register,
   * remove). The record stays after a removal so epochs never repeat.
   */
  async #resetStatus(id: string, status: DeviceStatus, options: { ifPresent?: boolean } = {}): Promise<void> {
    for (;;) {
      const current = await this.#statuses.get(id);
      if (!current && options.ifPresent) return;
      const next = { ...status, epoch: (current?.value.epoch ?? 0) + 1 };
      const stored = current ? await this.#statuses.update(id, next, current.revision) : await this.#statuses.create(id, next);
      if (stored !== undefined) return;
    }
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
