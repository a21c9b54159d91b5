/**
 * SenML pack resolution (RFC 8428 section 4.6) into validated Readings.
 *
 * Everything that can reach an InfluxDB line or query (names, units, text
 * values) is validated here, so storage only has to escape, never to judge.
 * Failures reject the whole pack: PW_ERR_PACK_MALFORMED (ACK 2) or
 * PW_ERR_TIME_RANGE (ACK 3); when both apply, malformed wins, because the
 * pack would be refused whatever the clock said.
 *
 * Decisions where RFC 8428 leaves room (docs/protocol.md repeats them):
 * - bv and bs are added to v and s when those are present; they never create
 *   a value on their own. Otherwise every vs/vb/vd record after a bv would
 *   carry two values, and a record with only bv would be a phantom reading.
 * - Empty bn / bu are allowed and reset the base; an empty u means "no unit".
 * - bver must be an integer from 1 to 10: 10 is RFC 8428, and a receiver
 *   MUST NOT use records of a version it does not know (RFC 8428 4.4).
 * - ut is type-checked and otherwise ignored.
 * - Record numbers in error details are 0-based indexes into the pack.
 */
import { PulsewireError } from '../errors/catalog.js';
import {
  DEFAULT_MAX_FUTURE_SECONDS, DEFAULT_MAX_PAST_SECONDS, DEFAULT_MAX_RECORDS, MAX_SENML_NAME_LENGTH,
  MAX_SENML_TEXT_LENGTH, MAX_SENML_UNIT_LENGTH, SENML_RELATIVE_TIME_LIMIT, SENML_VERSION,
} from './limits.js';
import type { Reading } from './messages.js';
import { CborPack, CborRecords, Unusual } from './senml-cbor.js';
import { Fields, Malformed, readFields } from './senml-fields.js';
import type { SenmlField } from './senml-labels.js';

export type PackLimits = { maxRecords: number; maxFutureSeconds: number; maxPastSeconds: number };
export type ResolveOptions = { nowUs: number } & Partial<PackLimits>;

/** The pack's base fields so far, and the resolved time (s) of the record just resolved (no wrapper object per record). */
type Base = { name: string; time: number; unit: string | undefined; value: number; sum: number; seconds: number };

const NAME = /^[A-Za-z0-9][A-Za-z0-9\-:./_]*$/;
const UNIT = /^[\x20-\x7e]*$/;
// C0, DEL and C1 controls: newlines and the like must not reach a stored string.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

const VALUE_FIELDS = ['v', 'vs', 'vb', 'vd', 's'] as const;

function num(fields: Fields, field: SenmlField): number | undefined {
  const raw = fields.get(field);
  if (raw === undefined) return undefined;
  const value = typeof raw === 'bigint' ? Number(raw) : raw;
  if (typeof value !== 'number') throw new Malformed(`${field} must be a number`);
  if (!Number.isFinite(value)) throw new Malformed(`${field} must be finite (no NaN or infinity)`);
  return value;
}

function text(fields: Fields, field: SenmlField): string | undefined {
  const raw = fields.get(field);
  if (raw !== undefined && typeof raw !== 'string') throw new Malformed(`${field} must be text`);
  return raw;
}

function checkUnit(field: SenmlField, unit: string | undefined): string | undefined {
  if (unit === undefined) return undefined;
  if (unit.length > MAX_SENML_UNIT_LENGTH) throw new Malformed(`${field} longer than ${MAX_SENML_UNIT_LENGTH} characters`);
  if (!UNIT.test(unit)) throw new Malformed(`${field} has a character outside printable ASCII`);
  return unit;
}

function checkName(name: string): string {
  if (name.length === 0) throw new Malformed('name is empty (no bn or n)');
  if (name.length > MAX_SENML_NAME_LENGTH) throw new Malformed(`name longer than ${MAX_SENML_NAME_LENGTH} characters`);
  if (!NAME.test(name)) {
    throw new Malformed(/^[A-Za-z0-9]/.test(name) ? 'name has invalid character' : 'name must start with a letter or digit');
  }
  return name;
}

/** The only value field of a record, or the error naming what is wrong. */
function valueField(fields: Fields): (typeof VALUE_FIELDS)[number] {
  let found: (typeof VALUE_FIELDS)[number] | undefined;
  let count = 0;
  for (const f of VALUE_FIELDS) {
    if (fields.has(f)) {
      found ??= f;
      count++;
    }
  }
  if (count === 1) return found!;
  throw new Malformed(count === 0
    ? 'record has no value (v, vs, vb, vd or s)'
    : `record has more than one value (${VALUE_FIELDS.filter((f) => fields.has(f)).join(', ')})`);
}

/** Applies this record's base fields to `base`, then resolves the record itself; its time in seconds goes to base.seconds. */
function resolveRecord(fields: Fields, base: Base): Reading {
  const bver = num(fields, 'bver');
  if (bver !== undefined && !(Number.isInteger(bver) && bver >= 1 && bver <= SENML_VERSION)) {
    throw new Malformed(`bver must be an integer from 1 to ${SENML_VERSION}`);
  }
  base.name = text(fields, 'bn') ?? base.name;
  base.time = num(fields, 'bt') ?? base.time;
  if (fields.has('bu')) base.unit = checkUnit('bu', text(fields, 'bu')) || undefined;
  base.value = num(fields, 'bv') ?? base.value;
  base.sum = num(fields, 'bs') ?? base.sum;

  const n = text(fields, 'n');
  const name = checkName(n === undefined ? base.name : base.name + n);
  const unit = fields.has('u') ? checkUnit('u', text(fields, 'u')) || undefined : base.unit;
  num(fields, 'ut');
  const seconds = base.time + (num(fields, 't') ?? 0);
  if (!Number.isFinite(seconds)) throw new Malformed('resolved time is not finite');

  const field = valueField(fields);
  let kind: Reading['kind'];
  let value: Reading['value'];
  switch (field) {
    case 'v':
    case 's': {
      value = (field === 'v' ? base.value : base.sum) + num(fields, field)!;
      if (!Number.isFinite(value)) throw new Malformed(`resolved ${field} is not finite`);
      kind = field === 'v' ? 'value' : 'sum';
      break;
    }
    case 'vs': {
      value = text(fields, 'vs')!;
      // Code points, not UTF-16 units; only a long string can have too many.
      if (value.length > MAX_SENML_TEXT_LENGTH && [...value].length > MAX_SENML_TEXT_LENGTH) {
        throw new Malformed(`vs longer than ${MAX_SENML_TEXT_LENGTH} characters`);
      }
      if (CONTROL.test(value)) throw new Malformed('vs contains a control character');
      kind = 'text';
      break;
    }
    case 'vb': {
      value = fields.get('vb') as boolean;
      if (typeof value !== 'boolean') throw new Malformed('vb must be a boolean');
      kind = 'flag';
      break;
    }
    default: {
      value = fields.get('vd') as Uint8Array;
      if (!(value instanceof Uint8Array)) throw new Malformed('vd must be a byte string');
      kind = 'data';
    }
  }
  // timeUs is set by the caller; given here so every reading has one object shape.
  base.seconds = seconds;
  return unit === undefined ? { name, timeUs: 0, kind, value } : { name, unit, timeUs: 0, kind, value };
}

const malformed = (detail: string) => new PulsewireError('PW_ERR_PACK_MALFORMED', detail);

/** Resolution is synchronous, so one Fields serves every pack in turn. */
const packFields = new Fields();

/** Reads record `index` of a pack into `fields` (records are read in order, each once). */
type RecordReader = (fields: Fields, index: number) => void;

/**
 * Resolves and validates a SenML pack; `nowUs` is the hub's clock at receipt.
 * The pack is decoded CBOR or JSON (an array of Maps or objects), or a
 * TELEMETRY frame's bytes (CborPack, senml-cbor.ts), read without decoding
 * them into objects first; what that reader leaves aside goes through cbor-x.
 */
export function resolvePack(pack: unknown, opts: ResolveOptions): { readings: Reading[] } | PulsewireError {
  if (pack instanceof CborPack) {
    const records = new CborRecords(pack);
    try {
      const resolved = resolveRecords(pack.length, (fields) => records.next(fields), opts);
      // A refusal is given as cbor-x's way gives it: this reader stops at the first bad record, where cbor-x
      // may first refuse the whole frame (a later record in an encoding only cbor-x reads, or cannot).
      if (!(resolved instanceof PulsewireError)) return resolved;
    } catch (err) {
      if (!(err instanceof Unusual)) throw err;
    }
    const decoded = pack.decode();
    return decoded instanceof PulsewireError ? decoded : resolvePack(decoded, opts);
  }
  if (!Array.isArray(pack)) return malformed('pack must be an array of records');
  return resolveRecords(pack.length, (fields, index) => readFields(pack[index], fields), opts);
}

function resolveRecords(count: number, read: RecordReader, opts: ResolveOptions): { readings: Reading[] } | PulsewireError {
  const maxRecords = opts.maxRecords ?? DEFAULT_MAX_RECORDS;
  const earliestUs = opts.nowUs - (opts.maxPastSeconds ?? DEFAULT_MAX_PAST_SECONDS) * 1e6;
  const latestUs = opts.nowUs + (opts.maxFutureSeconds ?? DEFAULT_MAX_FUTURE_SECONDS) * 1e6;
  if (count === 0) return malformed('pack is empty');
  if (count > maxRecords) return malformed(`pack has ${count} records, at most ${maxRecords} allowed`);

  const base: Base = { name: '', time: 0, unit: undefined, value: 0, sum: 0, seconds: 0 };
  const fields = packFields;
  const readings: Reading[] = [];
  let timeError: PulsewireError | undefined;
  for (let i = 0; i < count; i++) {
    try {
      read(fields, i);
      const reading = resolveRecord(fields, base);
      const { seconds } = base;
      // Below 2^28 s the time is relative to now (RFC 8428 4.5.3); 0 or absent means now.
      const timeUs = Math.round(seconds < SENML_RELATIVE_TIME_LIMIT ? opts.nowUs + seconds * 1e6 : seconds * 1e6);
      if (timeUs < earliestUs || timeUs > latestUs) {
        timeError ??= new PulsewireError('PW_ERR_TIME_RANGE', `record ${i}: time ${seconds} s is outside the accepted window`);
      }
      reading.timeUs = timeUs;
      readings.push(reading);
    } catch (err) {
      if (err instanceof Malformed) return malformed(`record ${i}: ${err.message}`);
      throw err;
    }
  }
  return timeError ?? { readings };
}
