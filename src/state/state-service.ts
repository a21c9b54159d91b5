/**
 * Device state (protocol section 3, REPORTED and DESIRED): REPORTED merges
 * into the reported document, an operator's merge patch into the desired one
 * (bumping its version), and both are exposed with their delta. Sending
 * DESIRED to the device is the outbox's job: it listens for `state.desired`
 * and asks `desiredFor` what to send.
 */
import { PulsewireError } from '../errors/catalog.js';
import type { EventBus } from '../events/bus.js';
import { encodeDesired } from '../protocol/encode.js';
import { cborStateToJson, JsonCborError, jsonStateToCbor } from '../protocol/json-cbor.js';
import type { CborMap, DesiredMessage } from '../protocol/messages.js';
import { mergePatchObject, stateDelta } from './merge-patch.js';
import type { DesiredRecord, ReportedRecord, StateStore } from './state-store.js';
import type { DeviceStateView, JsonObject } from './types.js';

type Logger = { warn(obj: object, msg: string): void };

export class StateService {
  readonly #store: StateStore;
  readonly #bus: EventBus;
  readonly #maxMessageBytes: number;
  readonly #log: Logger;
  readonly #now: () => number;
  /** Each device's REPORTED documents are merged one after another, in the order they came. */
  readonly #reportedQueue = new Map<string, Promise<void>>();

  constructor(deps: { store: StateStore; bus: EventBus; maxMessageBytes: number; logger: Logger; now?: () => number }) {
    this.#store = deps.store;
    this.#bus = deps.bus;
    this.#maxMessageBytes = deps.maxMessageBytes;
    this.#log = deps.logger;
    this.#now = deps.now ?? Date.now;
  }

  async view(deviceId: string): Promise<DeviceStateView> {
    const [desired, reported] = await Promise.all([this.#store.desired(deviceId), this.#store.reported(deviceId)]);
    return viewOf(deviceId, desired, reported);
  }

  /** PATCH /v1/devices/:id/desired: RFC 7396 on the desired document; resolves once durable, with the version it got. */
  async patchDesired(deviceId: string, patch: JsonObject): Promise<DeviceStateView> {
    const at = this.#now();
    const stored = await this.#store.updateDesired(deviceId, (current, lastVersion) => {
      const desired = mergePatchObject(current.desired, patch);
      // Above any version this id had before a removal too: firmware ignores a lower one.
      const version = lastVersion + 1;
      this.#checkSize(version, desired);
      return { desired, version, desiredAt: at };
    });
    this.#bus.emit('state.desired', { deviceId, desired: stored.desired, version: stored.version, at });
    return viewOf(deviceId, stored, await this.#store.reported(deviceId));
  }

  /**
   * REPORTED from the device: a merge patch on its reported document.
   * `state.reported` goes out once the document is committed, so operators
   * never see a state that was not saved; if the commit fails there is no
   * event, only a warning (the device is not told: REPORTED has no answer).
   * Resolves when that is decided; never rejects.
   */
  onReported(deviceId: string, state: CborMap): Promise<void> {
    const patch = cborStateToJson(state);
    const at = this.#now();
    const before = this.#reportedQueue.get(deviceId) ?? Promise.resolve();
    const work = before.then(() => this.#store.updateReported(deviceId, (current) => ({ reported: mergePatchObject(current.reported, patch), reportedAt: at }))).then(
      (stored) => this.#bus.emit('state.reported', { deviceId, reported: stored.reported, at }),
      (err: unknown) => this.#log.warn({ err, deviceId }, 'reported state not stored; no state.reported event'),
    );
    this.#reportedQueue.set(deviceId, work);
    void work.then(() => {
      if (this.#reportedQueue.get(deviceId) === work) this.#reportedQueue.delete(deviceId);
    });
    return work;
  }

  /** The DESIRED message for a device, or undefined when no desired state was ever set. */
  async desiredFor(deviceId: string): Promise<DesiredMessage | undefined> {
    const record = await this.#store.desired(deviceId);
    if (record.version === 0) return undefined;
    return { type: 6, version: record.version, state: jsonStateToCbor(record.desired) };
  }

  async forgetDevice(deviceId: string): Promise<void> {
    await this.#store.remove(deviceId);
  }

  /** Waits for REPORTED documents still being stored. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.#reportedQueue.values()]);
  }

  #checkSize(version: number, desired: JsonObject): void {
    let frame: Uint8Array;
    try {
      frame = encodeDesired(version, jsonStateToCbor(desired));
    } catch (err) {
      const why = err instanceof JsonCborError ? err.message : (err as Error).message;
      throw new PulsewireError('PW_ERR_BAD_REQUEST', `desired state: ${why}`);
    }
    if (frame.length > this.#maxMessageBytes) {
      throw new PulsewireError('PW_ERR_STATE_TOO_BIG', `${frame.length} bytes encoded, the limit is ${this.#maxMessageBytes} (PULSEWIRE_MAX_MESSAGE_BYTES)`);
    }
  }
}

function viewOf(deviceId: string, desired: DesiredRecord, reported: ReportedRecord): DeviceStateView {
  return {
    deviceId,
    reported: reported.reported,
    desired: desired.desired,
    version: desired.version,
    delta: stateDelta(desired.desired, reported.reported),
    ...(reported.reportedAt !== undefined ? { reportedAt: new Date(reported.reportedAt).toISOString() } : {}),
    ...(desired.desiredAt !== undefined ? { desiredAt: new Date(desired.desiredAt).toISOString() } : {}),
  };
}
