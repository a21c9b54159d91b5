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
 */
import { float64 } from './cbor-encode.js';
import type { JsonValue } from '../state/types.js';

const TAGGED_KEYS = new Set(['$bytes', '$bigint', '$float', '$map']);
const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;

export class JsonCborError extends Error {
  constructor(readonly path: string, why: string) {
    super(`${path || 'value'}: ${why}`);
    this.name = 'JsonCborError';
  }
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
  const keys = Object.keys(value);
  if (keys.length === 1 && TAGGED_KEYS.has(keys[0]!)) return taggedToCbor(keys[0]!, value[keys[0]!]!, path);
  const out: Record<string, unknown> = {};
  for (const key of keys) out[key] = jsonToCbor(value[key]!, path ? `${path}.${key}` : key);
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
  const entries: [unknown, unknown][] = value instanceof Map ? [...value.entries()] : Object.entries(value as object);
  const textKeys = entries.every(([k]) => typeof k === 'string');
  const looksTagged = entries.length === 1 && TAGGED_KEYS.has(entries[0]![0] as string);
  if (!textKeys || looksTagged) return { $map: entries.map(([k, v]) => [cborToJson(k), cborToJson(v)]) };
  const out: { [key: string]: JsonValue } = {};
  for (const [k, v] of entries) out[k as string] = cborToJson(v);
  return out;
}

/**
 * A device's state map (REPORTED) as a JSON object for merge patching: text
 * keys stay, integer keys become their decimal text (state documents are
 * JSON Merge Patch documents, whose keys are text). Values map as cborToJson.
 */
export function cborStateToJson(state: Map<unknown, unknown>): { [key: string]: JsonValue } {
  const out: { [key: string]: JsonValue } = {};
  for (const [k, v] of state) {
    const key = typeof k === 'string' ? k : String(k);
    out[key] = v instanceof Map && [...v.keys()].every((x) => typeof x === 'string' || typeof x === 'number')
      ? cborStateToJson(v)
      : cborToJson(v);
  }
  return out;
}
