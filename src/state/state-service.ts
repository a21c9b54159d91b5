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
import type { StateStore } from './state-store.js';
import type { DeviceStateView, JsonObject } from './types.js';

type Logger = { warn(obj: object, msg: string): void };

export class StateService {
  readonly #store: StateStore;
  readonly #bus: EventBus;
  readonly #maxMessageBytes: number;
  readonly #log: Logger;
  readonly #now: () => number;

  constructor(deps: { store: StateStore; bus: EventBus; maxMessageBytes: number; logger: Logger; now?: () => number }) {
    this.#store = deps.store;
    this.#bus = deps.bus;
    this.#maxMessageBytes = deps.maxMessageBytes;
    this.#log = deps.logger;
    this.#now = deps.now ?? Date.now;
  }

  view(deviceId: string): DeviceStateView {
    const record = this.#store.get(deviceId);
    return {
      deviceId,
      reported: record.reported,
      desired: record.desired,
      version: record.version,
      delta: stateDelta(record.desired, record.reported),
      ...(record.reportedAt !== undefined ? { reportedAt: new Date(record.reportedAt).toISOString() } : {}),
      ...(record.desiredAt !== undefined ? { desiredAt: new Date(record.desiredAt).toISOString() } : {}),
    };
  }

  /** PATCH /v1/devices/:id/desired: RFC 7396 on the desired document; resolves once durable. */
  async patchDesired(deviceId: string, patch: JsonObject): Promise<DeviceStateView> {
    const current = this.#store.get(deviceId);
    const desired = mergePatchObject(current.desired, patch);
    // Above any version this id had before a removal too: firmware ignores a lower one.
    const version = this.#store.lastVersion(deviceId) + 1;
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
    const at = this.#now();
    await this.#store.put(deviceId, { ...current, desired, version, desiredAt: at });
    this.#bus.emit('state.desired', { deviceId, desired, version, at });
    return this.view(deviceId);
  }

  /**
   * REPORTED from the device: a merge patch on its reported document.
   * `state.reported` goes out once the document is committed, so operators
   * never see a state that was not saved; if the commit fails there is no
   * event, only a warning (the device is not told: REPORTED has no answer).
   * Resolves when that is decided; never rejects.
   */
  onReported(deviceId: string, state: CborMap): Promise<void> {
    const current = this.#store.get(deviceId);
    const reported = mergePatchObject(current.reported, cborStateToJson(state));
    const at = this.#now();
    return this.#store.put(deviceId, { ...current, reported, reportedAt: at }).then(
      () => this.#bus.emit('state.reported', { deviceId, reported, at }),
      (err: unknown) => this.#log.warn({ err, deviceId }, 'reported state not stored; no state.reported event'),
    );
  }

  /** The DESIRED message for a device, or undefined when no desired state was ever set. */
  desiredFor(deviceId: string): DesiredMessage | undefined {
    const record = this.#store.get(deviceId);
    if (record.version === 0) return undefined;
    return { type: 6, version: record.version, state: jsonStateToCbor(record.desired) };
  }

  async forgetDevice(deviceId: string): Promise<void> {
    await this.#store.remove(deviceId);
  }

  async close(): Promise<void> {
    await this.#store.flush();
  }
}
