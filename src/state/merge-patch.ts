/**
 * JSON Merge Patch (RFC 7396), the one rule for both REPORTED (protocol
 * section 3) and PATCH /v1/devices/:id/desired: null removes a key, objects
 * merge recursively, anything else (arrays included) replaces. Pure; the
 * target is not modified.
 *
 * The tagged spellings of docs/json-cbor.md (`{"$bytes": ...}` and its kin)
 * are one CBOR value each, not objects: a patch value that is one replaces
 * what was there, and a target value that is one is replaced by an object
 * patch, never merged into (`{"$float": "NaN", "a": 1}` means nothing).
 */
import { isTaggedJson, readBack } from '../protocol/json-cbor.js';
import type { JsonObject, JsonValue } from './types.js';

export function mergePatch(target: JsonValue | undefined, patch: JsonValue): JsonValue {
  if (!isObject(patch)) return patch;
  return mergeInto(isObject(target) ? target : {}, patch);
}

/**
 * Merge-patches a state document. The document itself is always an object
 * of state keys, so its own keys are merged even when there is only a
 * `$bytes` one (see jsonStateToCbor).
 */
export function mergePatchObject(target: JsonObject, patch: JsonObject): JsonObject {
  return mergeInto(target, patch);
}

function mergeInto(target: JsonObject, patch: JsonObject): JsonObject {
  const result: JsonObject = { ...target };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

/** A JSON object that merges: not an array, not a tagged spelling of one CBOR value. */
export function isObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !isTaggedJson(value);
}

export function deepEqual(a: JsonValue | undefined, b: JsonValue | undefined): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as JsonValue[];
    return a.length === bb.length && a.every((x, i) => deepEqual(x, bb[i]));
  }
  const ao = a as JsonObject;
  const bo = b as JsonObject;
  const keys = Object.keys(ao);
  return keys.length === Object.keys(bo).length && keys.every((k) => k in bo && deepEqual(ao[k], bo[k]));
}

/**
 * What desired asks that reported does not show yet: the keys of desired
 * whose value differs from reported, recursing into objects present in both
 * (so a nested difference shows only the nested key). Empty when in sync.
 * Values are compared as the device sees them, not as they are spelled:
 * `{"$float": 30}` asks what a reported 30 shows (see readBack).
 */
export function stateDelta(desired: JsonObject, reported: JsonObject): JsonObject {
  const delta: JsonObject = {};
  for (const [key, want] of Object.entries(desired)) {
    const have = reported[key];
    if (isObject(want) && isObject(have)) {
      const nested = stateDelta(want, have);
      if (Object.keys(nested).length > 0) delta[key] = nested;
    } else if (!sameValue(want, have)) {
      delta[key] = want;
    }
  }
  return delta;
}

function sameValue(want: JsonValue, have: JsonValue | undefined): boolean {
  if (have === undefined) return false;
  try {
    return deepEqual(readBack(want), readBack(have));
  } catch {
    // A value the hub would refuse to send (patchDesired stores none): compare as spelled.
    return deepEqual(want, have);
  }
}
