/** Pure helpers for a device's reported and desired state (kept apart so tests import them without the DOM). */
import type { JsonObject, JsonValue } from './types.js';

/** What desired asks that reported does not show yet (as the hub computes it, see src/state/types.ts). */
export function computeDelta(desired: JsonObject, reported: JsonObject): JsonObject {
  const delta: JsonObject = {};
  for (const [key, value] of Object.entries(desired)) {
    if (!jsonEqual(value, reported[key])) delta[key] = value;
  }
  return delta;
}

export function jsonEqual(a: JsonValue | undefined, b: JsonValue | undefined): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((item, i) => jsonEqual(item, b[i]));
  const ao = a as JsonObject;
  const bo = b as JsonObject;
  const keys = Object.keys(ao);
  return keys.length === Object.keys(bo).length && keys.every((key) => key in bo && jsonEqual(ao[key], bo[key]));
}

