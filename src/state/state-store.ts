/**
 * Durable reported and desired state per device (protocol section 3: "the hub
 * keeps both documents durably"), as two records per device: the device
 * writes `reported`, operators write `desired` with its version, so the two
 * writers never race on one record. Each change is an expected-revision
 * update: two nodes patching one device's desired state at once get two
 * distinct versions, never one version for two documents.
 *
 * Firmware keeps the last desired version it applied and ignores lower ones,
 * so a device id's versions never go backwards: removing a device leaves its
 * last version in `desired-versions`, and a re-provisioned device continues
 * above it (lastVersion).
 */
import type { Bucket, Entry } from '../stores/bucket.js';
import type { JsonObject } from './types.js';

export type DesiredRecord = { desired: JsonObject; version: number; desiredAt?: number };
export type ReportedRecord = { reported: JsonObject; reportedAt?: number };

export type StateBuckets = {
  desired: Bucket<DesiredRecord>;
  reported: Bucket<ReportedRecord>;
  desiredVersions: Bucket<number>;
};

export const NO_DESIRED: Readonly<DesiredRecord> = Object.freeze({ desired: {}, version: 0 });
export const NO_REPORTED: Readonly<ReportedRecord> = Object.freeze({ reported: {} });

export class StateStore {
  readonly #buckets: StateBuckets;

  constructor(buckets: StateBuckets) {
    this.#buckets = buckets;
  }

  async desired(deviceId: string): Promise<DesiredRecord> {
    return (await this.#buckets.desired.get(deviceId))?.value ?? NO_DESIRED;
  }

  async reported(deviceId: string): Promise<ReportedRecord> {
    return (await this.#buckets.reported.get(deviceId))?.value ?? NO_REPORTED;
  }

  /**
   * Applies `change` to the device's desired record as one revision-checked
   * update, read again and retried when another writer came first. `change`
   * gets the current record and the highest version the id ever had; it may
   * throw to refuse. Resolves with what was stored, once durable.
   */
  async updateDesired(deviceId: string, change: (current: DesiredRecord, lastVersion: number) => DesiredRecord): Promise<DesiredRecord> {
    return this.#update(this.#buckets.desired, deviceId, NO_DESIRED, async (current) => {
      const removed = (await this.#buckets.desiredVersions.get(deviceId))?.value ?? 0;
      return change(current, Math.max(current.version, removed));
    });
  }

  /** Applies `change` to the reported record, like updateDesired. */
  async updateReported(deviceId: string, change: (current: ReportedRecord) => ReportedRecord): Promise<ReportedRecord> {
    return this.#update(this.#buckets.reported, deviceId, NO_REPORTED, async (current) => change(current));
  }

  /** Forgets the device's documents; its last desired version stays, written first. */
  async remove(deviceId: string): Promise<void> {
    const { desired, reported, desiredVersions } = this.#buckets;
    const current = await desired.get(deviceId);
    if (current && current.value.version > 0) {
      const removed = (await desiredVersions.get(deviceId))?.value ?? 0;
      if (current.value.version > removed) await desiredVersions.put(deviceId, current.value.version);
    }
    await Promise.all([desired.delete(deviceId), reported.delete(deviceId)]);
  }

  async #update<R>(bucket: Bucket<R>, deviceId: string, empty: R, change: (current: R) => Promise<R>): Promise<R> {
    for (;;) {
      const entry: Entry<R> | undefined = await bucket.get(deviceId);
      const next = await change(entry?.value ?? empty);
      const stored = entry ? await bucket.update(deviceId, next, entry.revision) : await bucket.create(deviceId, next);
      if (stored !== undefined) return next;
    }
  }
}
