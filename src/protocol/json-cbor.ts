/**
 * The one mapping between the operator API's JSON and the CBOR devices see
 * (docs/json-cbor.md). JSON cannot say "byte string", "integer beyond 2^53"
 * or "float that happens to be integral", so those have a tagged-object
 * spelling: a JSON object with exactly one `$`-key.
 *
 *   {"$bytes": "<base64>"}   <-> CBOR byte string
 *   {"$bigint": "<decimal>"} <-> CBOR integer outside ±(2^53-1), within 64 bits
 *   {"$float": 30}           ->  CBOR float64 even though 30 is integral
 *   {"$float": "NaN" | "Infinity" | "-Infinity"} <-> those floats
 *   {"$map": [[key, value], ...]} <-> a CBOR map whose keys are not all text
 *                                    (or whose only key looks like one of these)
 * Everything else maps as you would expect: null, booleans, text, arrays,
 * objects with text keys; a JSON number is an integer when it is a safe
 * integer and a float64 otherwise. No CBOR tags are ever produced.
 *
 * A state document (REPORTED, DESIRED) is always a map: its own keys are
 * state keys, never a tagged spelling; the values in it may be.
 */
import { decodeCbor } from './cbor-decode.js';
import { encodeCbor, float64 } from './cbor-encode.js';
import type { JsonObject, JsonValue } from '../state/types.js';

const TAGGED_KEYS = new Set(['$bytes', '$bigint', '$float', '$map']);
const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;

export class JsonCborError extends Error {
  constructor(readonly path: string, why: string) {
    super(`${path || 'value'}: ${why}`);
    this.name = 'JsonCborError';
  }
}

/** True for the tagged spelling of one CBOR value: an object whose only key is `$bytes`, `$bigint`, `$float` or `$map`. */
export function isTaggedJson(value: JsonValue | undefined): value is JsonObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  return keys.length === 1 && TAGGED_KEYS.has(keys[0]!);
}

/** API JSON → a value the hub's CBOR encoder sends as the documented CBOR. Throws JsonCborError. */
export function jsonToCbor(value: JsonValue, path = ''): unknown {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return value;
  if (typeof value === 'number') {
    if (Number.isInteger(value) && !Number.isSafeInteger(value)) {
      throw new JsonCborError(path, `integer ${value} is beyond 2^53 and lost precision in JSON; write {"$bigint": "<decimal>"}`);
    }
    return value;
  }
  if (Array.isArray(value)) return value.map((item, i) => jsonToCbor(item, `${path}[${i}]`));
  if (isTaggedJson(value)) {
    const tag = Object.keys(value)[0]!;
    return taggedToCbor(tag, value[tag]!, path);
  }
  return objectToCbor(value, path);
}

/** A state document (DESIRED) → its CBOR map: the document's own keys are never read as a tagged spelling. */
export function jsonStateToCbor(state: JsonObject): Record<string, unknown> {
  return objectToCbor(state, '');
}

function objectToCbor(value: JsonObject, path: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) out[key] = jsonToCbor(item, path ? `${path}.${key}` : key);
  return out;
}

function taggedToCbor(tag: string, inner: JsonValue, path: string): unknown {
  switch (tag) {
    case '$bytes':
      if (typeof inner !== 'string' || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(inner)) throw new JsonCborError(path, '$bytes must be base64 text');
      return new Uint8Array(Buffer.from(inner, inner.includes('-') || inner.includes('_') ? 'base64url' : 'base64'));
    case '$bigint': {
      if (typeof inner !== 'string' || !/^-?\d{1,20}$/.test(inner)) throw new JsonCborError(path, '$bigint must be decimal text');
      const big = BigInt(inner);
      if (big < INT64_MIN || big > UINT64_MAX) throw new JsonCborError(path, '$bigint must fit in 64 bits (CBOR without tags)');
      return Number.isSafeInteger(Number(big)) && BigInt(Number(big)) === big ? Number(big) : big;
    }
    case '$float':
      if (typeof inner === 'number') return float64(inner);
      if (inner === 'NaN') return float64(Number.NaN);
      if (inner === 'Infinity') return float64(Number.POSITIVE_INFINITY);
      if (inner === '-Infinity') return float64(Number.NEGATIVE_INFINITY);
      throw new JsonCborError(path, '$float must be a number, "NaN", "Infinity" or "-Infinity"');
    default: {
      if (!Array.isArray(inner)) throw new JsonCborError(path, '$map must be an array of [key, value] pairs');
      const map = new Map<unknown, unknown>();
      inner.forEach((pair, i) => {
        if (!Array.isArray(pair) || pair.length !== 2) throw new JsonCborError(`${path}.$map[${i}]`, 'each entry is a [key, value] pair');
        map.set(jsonToCbor(pair[0]!, `${path}.$map[${i}][0]`), jsonToCbor(pair[1]!, `${path}.$map[${i}][1]`));
      });
      return map;
    }
  }
}

/** A decoded CBOR item (cbor-x, maps as Map) → API JSON. Total: every tag-free item has a spelling. */
export function cborToJson(value: unknown): JsonValue {
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case 'boolean':
    case 'string':
      return value;
    case 'number':
      if (Number.isFinite(value)) return value;
      return { $float: Number.isNaN(value) ? 'NaN' : value > 0 ? 'Infinity' : '-Infinity' };
    case 'bigint':
      return Number.isSafeInteger(Number(value)) ? Number(value) : { $bigint: value.toString() };
  }
  if (value instanceof Uint8Array) return { $bytes: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') };
  if (Array.isArray(value)) return value.map(cborToJson);
  const entries = entriesOf(value as object);
  const textKeys = entries.every(([k]) => typeof k === 'string');
  if (!textKeys || looksTagged(entries)) return { $map: entries.map(([k, v]) => [cborToJson(k), cborToJson(v)]) };
  const out: { [key: string]: JsonValue } = {};
  for (const [k, v] of entries) out[k as string] = cborToJson(v);
  return out;
}

const entriesOf = (map: object): [unknown, unknown][] => (map instanceof Map ? [...map.entries()] : Object.entries(map));
const looksTagged = (entries: [unknown, unknown][]): boolean => entries.length === 1 && TAGGED_KEYS.has(entries[0]![0] as string);

/**
 * A device's state map (REPORTED) as a JSON object for merge patching: text
 * keys stay, integer keys become their decimal text (state documents are
 * JSON Merge Patch documents, whose keys are text), in nested maps too.
 * Other values map as cborToJson; so does a nested map that would read as a
 * tagged spelling (`{"$float": 1}` from a device is `{"$map": [["$float", 1]]}`).
 */
export function cborStateToJson(state: Map<unknown, unknown>): JsonObject {
  const out: JsonObject = {};
  for (const [k, v] of state) out[String(k)] = stateValueToJson(v);
  return out;
}

function stateValueToJson(value: unknown): JsonValue {
  if (!(value instanceof Map)) return cborToJson(value);
  const entries = entriesOf(value);
  if (looksTagged(entries) || !entries.every(([k]) => typeof k === 'string' || typeof k === 'number')) return cborToJson(value);
  return cborStateToJson(value);
}

/**
 * A state value as the hub reads it back when the device reports exactly
 * what it was sent: JSON → CBOR → JSON, one spelling per value the device can
 * tell apart (`{"$float": 30}` reads back as 30, base64url `$bytes` as base64,
 * a small `$bigint` as a number, `$map` integer keys as text). Throws
 * JsonCborError for a value the hub would refuse to send.
 */
export function readBack(value: JsonValue): JsonValue {
  const decoded = decodeCbor(encodeCbor(jsonToCbor(value)), undefined, { exactIntegers: true });
  if (decoded instanceof Error) throw new JsonCborError('', decoded.message);
  return stateValueToJson(decoded.value);
}
