/**
 * SenML labels (RFC 8428 section 6 and 12.2) and a record builder for
 * device-sim and tests. Integer labels are what the protocol's vectors use
 * (and what saves bytes on a device); text labels are accepted too.
 */
import type { Float64 } from './cbor-encode.js';

export const SENML_LABELS = {
  bver: -1, bn: -2, bt: -3, bu: -4, bv: -5, bs: -6,
  n: 0, u: 1, v: 2, vs: 3, vb: 4, s: 5, t: 6, ut: 7, vd: 8,
} as const;

export type SenmlField = keyof typeof SENML_LABELS;

const FIELDS = new Set<string>(Object.keys(SENML_LABELS));
const BY_INTEGER = new Map<number, SenmlField>(
  Object.entries(SENML_LABELS).map(([field, label]) => [label, field as SenmlField]),
);

/** The field a CBOR map key names, or undefined when it is not a SenML label. */
export function senmlField(key: string | number): SenmlField | undefined {
  if (typeof key === 'number') return BY_INTEGER.get(key);
  return FIELDS.has(key) ? (key as SenmlField) : undefined;
}

type Num = number | Float64;

/** One record's fields by their text names; senmlRecord turns them into integer labels. */
export type SenmlFields = {
  bver?: number; bn?: string; bt?: Num; bu?: string; bv?: Num; bs?: Num;
  n?: string; u?: string; v?: Num; vs?: string; vb?: boolean; s?: Num; t?: Num; ut?: Num; vd?: Uint8Array;
};

/**
 * A SenML record as a CBOR map with integer labels. Key order does not
 * matter: the encoder sorts keys, which gives the vector's 0, 1, 2, -2, -3.
 */
export function senmlRecord(fields: SenmlFields): Map<number, unknown> {
  const record = new Map<number, unknown>();
  for (const [field, value] of Object.entries(fields)) {
    if (value !== undefined) record.set(SENML_LABELS[field as SenmlField], value);
  }
  return record;
}
