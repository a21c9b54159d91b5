/**
 * One SenML record's fields, by label, as senml.ts resolves them, and the
 * checks on labels (RFC 8428 section 6 and 4.4) that apply however the
 * record was read: from decoded CBOR (a Map), from JSON (an object), or
 * straight from a frame's bytes (senml-cbor.ts).
 */
import { SENML_LABELS, senmlField, type SenmlField } from './senml-labels.js';

/** Thrown while reading or resolving a record, caught in resolvePack. */
export class Malformed extends Error {}

/** A short, printable rendering of a device-chosen key for error details. */
export function show(key: unknown): string {
  return JSON.stringify(String(key)).slice(0, 34);
}

/**
 * One record's fields, by label, in fixed slots. One instance serves a whole
 * pack (cleared per record): a Map per record and the objects built around it
 * were a fifth of the hub's CPU at full ingest (profile), most of it garbage.
 */
export class Fields {
  readonly #values: unknown[] = new Array(SLOTS).fill(undefined);
  #present = 0;
  /** Fields set by a text label (the others by an integer one). */
  #byText = 0;

  clear(): void {
    this.#present = 0;
    this.#byText = 0;
  }

  /** Whether `field` was set by a label of the other kind than `text` says (integer vs text). */
  setByOther(field: SenmlField, text: boolean): boolean {
    return ((this.#byText & (1 << SLOT[field])) !== 0) !== text;
  }

  has(field: SenmlField): boolean {
    return (this.#present & (1 << SLOT[field])) !== 0;
  }

  get(field: SenmlField): unknown {
    const slot = SLOT[field];
    return (this.#present & (1 << slot)) !== 0 ? this.#values[slot] : undefined;
  }

  set(field: SenmlField, value: unknown, text = false): void {
    const slot = SLOT[field];
    this.#present |= 1 << slot;
    if (text) this.#byText |= 1 << slot;
    else this.#byText &= ~(1 << slot);
    this.#values[slot] = value;
  }
}

/** Slot of each field: its integer label shifted to start at 0. */
const SLOT = Object.fromEntries(Object.entries(SENML_LABELS).map(([field, label]) => [field, label + 6])) as Record<SenmlField, number>;
const SLOTS = 15;

/** Collects the record's fields into `fields`, checking labels (RFC 8428 section 6 and 4.4). */
export function readFields(record: unknown, fields: Fields): Fields {
  fields.clear();
  if (record instanceof Map) {
    // forEach, not for-of: no [key, value] array per label, and no closure (fields is `this`).
    record.forEach(addMapField, fields);
  } else if (typeof record === 'object' && record !== null && !Array.isArray(record) && !(record instanceof Uint8Array)) {
    for (const [key, value] of Object.entries(record)) addField(fields, key, value);
  } else throw new Malformed('record must be a map');
  return fields;
}

function addMapField(this: Fields, value: unknown, key: unknown): void {
  addField(this, key, value);
}

export function addField(fields: Fields, key: unknown, value: unknown): void {
  if (typeof key !== 'string' && !(typeof key === 'number' && Number.isInteger(key))) {
    throw new Malformed('labels must be integers or text');
  }
  const field = senmlField(key);
  if (field === undefined) {
    // Labels ending in "_" are must-understand extensions; anything else unknown is ignored.
    if (typeof key === 'string' && key.endsWith('_')) throw new Malformed(`must-understand label ${show(key)} not supported`);
    return;
  }
  const text = typeof key === 'string';
  // The same label twice can only come from CBOR bytes read as they are (senml-cbor.ts): the last one
  // counts, as in the Map cbor-x makes of them. An integer and a text label of one field are an error.
  if (fields.has(field) && fields.setByOther(field, text)) throw new Malformed(`${field} given twice (integer and text label)`);
  fields.set(field, value, text);
}

