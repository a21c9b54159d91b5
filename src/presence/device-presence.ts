/**
 * Which node holds which device, since when: the `online` half of each
 * device's status record (bucket `device-status`). A node that attaches a
 * connection claims the device: a new epoch, its node id, online. When the
 * connection ends it releases its claim: offline with the reason, but only if
 * the record still holds that claim. If another node (or this one, for a
 * newer connection) claimed the device since, the release writes nothing, so
 * a replaced connection never overwrites the newer "online" with "offline".
 *
 * Every write is an expected-revision update: two nodes claiming one device
 * at once both get a distinct epoch, and the one that wrote last holds it.
 */
import type { Bucket, Entry } from '../stores/bucket.js';
import { NEVER_CONNECTED, type DeviceStatus } from '../registry/device-registry.js';

/** One node's hold on one device. */
export type Claim = { readonly deviceId: string; readonly node: string; readonly epoch: number };

export type ClaimResult = {
  claim: Claim;
  /** The status before this claim (its messagesIn carries on; its node, if online, was replaced). */
  previous: DeviceStatus;
};

export type Release = { reason: string; lastSeen: number; messagesIn: number };

export class DevicePresence {
  readonly nodeId: string;
  readonly #statuses: Bucket<DeviceStatus>;

  constructor(statuses: Bucket<DeviceStatus>, nodeId: string) {
    this.#statuses = statuses;
    this.nodeId = nodeId;
  }

  /** The device's status as stored (never connected: undefined). */
  async status(deviceId: string): Promise<DeviceStatus | undefined> {
    return (await this.#statuses.get(deviceId))?.value;
  }

  /** Claims the device for this node: online from `connectedAt`, at `remoteAddress`. */
  async claim(deviceId: string, connection: { connectedAt: number; remoteAddress: string }): Promise<ClaimResult> {
    for (;;) {
      const current = await this.#statuses.get(deviceId);
      const previous = current?.value ?? NEVER_CONNECTED;
      const epoch = (previous.epoch ?? 0) + 1;
      const next: DeviceStatus = {
        online: true,
        connectedAt: connection.connectedAt,
        lastSeen: connection.connectedAt,
        remoteAddress: connection.remoteAddress,
        messagesIn: previous.messagesIn,
        node: this.nodeId,
        epoch,
      };
      if (await this.#write(deviceId, next, current)) return { claim: { deviceId, node: this.nodeId, epoch }, previous: { ...previous } };
    }
  }

  /** Offline, if `claim` still holds the device; false (nothing written) when it was claimed since. */
  async release(claim: Claim, release: Release): Promise<boolean> {
    for (;;) {
      const current = await this.#statuses.get(claim.deviceId);
      if (!current || !holds(current.value, claim)) return false;
      const { connectedAt, remoteAddress } = current.value;
      const next: DeviceStatus = {
        online: false,
        ...(connectedAt !== undefined ? { connectedAt } : {}),
        ...(remoteAddress !== undefined ? { remoteAddress } : {}),
        lastSeen: release.lastSeen,
        offlineReason: release.reason,
        messagesIn: release.messagesIn,
        node: claim.node,
        epoch: claim.epoch,
      };
      if (await this.#write(claim.deviceId, next, current)) return true;
    }
  }

  /**
   * Marks offline, with `reason`, every device listed online by a node for
   * which `isGone(node)` holds (this process's own earlier run after a
   * restart; a node that died). Each is a revision-checked update, so a device
   * that reconnected meanwhile keeps its new claim. Returns how many.
   */
  async releaseAllOf(isGone: (node: string | undefined) => boolean, reason: string, at: number): Promise<string[]> {
    return this.releaseWhere((status) => isGone(status.node), reason, at);
  }

  /** Like releaseAllOf, for the online devices whose status `gone` picks. */
  async releaseWhere(gone: (status: DeviceStatus) => boolean, reason: string, at: number): Promise<string[]> {
    const released: string[] = [];
    for await (const entry of this.#statuses.entries()) {
      if (!entry.value.online || !gone(entry.value)) continue;
      const next: DeviceStatus = { ...entry.value, online: false, offlineReason: reason, lastSeen: entry.value.lastSeen ?? at };
      if ((await this.#statuses.update(entry.key, next, entry.revision)) !== undefined) released.push(entry.key as string);
    }
    return released;
  }

  /**
   * Calls `listener` whenever a device's status changes, on any node, in the
   * order written. A status replaced before it reached this node may be
   * skipped (on JetStream the bucket keeps one revision per key, and a watch
   * that restarts resumes from what the stream still holds); the latest never
   * is. Listeners act on the status they are given, not on the step from the
   * one before (the gateway's takeover check compares epochs).
   */
  watch(listener: (deviceId: string, status: DeviceStatus | undefined) => void): () => void {
    return this.#statuses.watch((change) => listener(change.key as string, change.value));
  }

  async #write(deviceId: string, next: DeviceStatus, current: Entry<DeviceStatus> | undefined): Promise<boolean> {
    const stored = current ? await this.#statuses.update(deviceId, next, current.revision) : await this.#statuses.create(deviceId, next);
    return stored !== undefined;
  }
}

/** Whether `status` is still the one `claim` wrote (same node, same epoch, online). */
export function holds(status: DeviceStatus, claim: Claim): boolean {
  return status.online && status.node === claim.node && status.epoch === claim.epoch;
}
