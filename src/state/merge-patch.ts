/**
 * JSON Merge Patch (RFC 7396), the one rule for both REPORTED (protocol
 * section 3) and PATCH /v1/devices/:id/desired: null removes a key, objects
 * merge recursively, anything else (arrays included) replaces. Pure; the
 * target is not modified.
 */
import type { JsonObject, JsonValue } from './types.js';

export function mergePatch(target: JsonValue | undefined, patch: JsonValue): JsonValue {
  if (!isObject(patch)) return patch;
  const result: JsonObject = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

/** Merge-patches an object document (state documents are always objects). */
export function mergePatchObject(target: JsonObject, patch: JsonObject): JsonObject {
  return mergePatch(target, patch) as JsonObject;
}

export function isObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
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
 */
export function stateDelta(desired: JsonObject, reported: JsonObject): JsonObject {
  const delta: JsonObject = {};
  for (const [key, want] of Object.entries(desired)) {
    const have = reported[key];
    if (isObject(want) && isObject(have)) {
      const nested = stateDelta(want, have);
      if (Object.keys(nested).length > 0) delta[key] = nested;
    } else if (!deepEqual(want, have)) {
      delta[key] = want;
    }
  }
  return delta;
}
