/** JSON values as the operator API carries them (see docs/json-cbor.md for the CBOR mapping). */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** A device's two state documents (protocol section 3, REPORTED and DESIRED). */
export type DeviceStateView = {
  deviceId: string;
  reported: JsonObject;
  desired: JsonObject;
  /**
   * Desired-state version: 0 until the first PATCH, then +1 per change. Never
   * lower than one this device id had before: after a removal and a new
   * registration it continues above the last one (firmware ignores lower ones).
   */
  version: number;
  /** What desired asks that reported does not show yet (keys of desired whose value differs). */
  delta: JsonObject;
  reportedAt?: string;
  desiredAt?: string;
};
