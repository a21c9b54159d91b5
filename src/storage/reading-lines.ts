/**
 * A device's readings as the line protocol InfluxDB stores (protocol v1
 * section 6, the same bytes schema.ts readingPoints gave through node-influx):
 * the form a reading is spooled in and written in, made once at intake.
 *
 * A reading's series key (`telemetry,device=..,name=..[,unit=..] `) is the
 * same for every reading of its series, so each device keeps the keys of its
 * names (SeriesKeys, at most one per name: a name is refused past the
 * device's name limit before it gets here): a reading then costs its field,
 * its timestamp and one concatenation, not tag objects and escaping.
 */
import { PulsewireError } from '../errors/catalog.js';
import type { Reading } from '../protocol/messages.js';
import { escapeTag, quoteString } from './line-protocol.js';
import { MEASUREMENT } from './schema.js';

type Key = { readonly unit: string | undefined; readonly prefix: string };

/** One device's series keys, by name (a unit that changes replaces its name's key). */
export class SeriesKeys {
  readonly #deviceTags: string;
  readonly #byName = new Map<string, Key>();

  constructor(deviceId: string) {
    this.#deviceTags = [MEASUREMENT.TELEMETRY, ',device=', escapeTag(deviceId), ',name='].join('');
  }

  /** `telemetry,device=..,name=..[,unit=..] ` (with the space before the field). */
  prefix(name: string, unit: string | undefined): string {
    const key = this.#byName.get(name);
    if (key !== undefined && key.unit === unit) return key.prefix;
    // Line protocol has no empty tag value; an empty unit is no unit (resolvePack already makes it undefined).
    // Joined, not concatenated: a join is one flat string, where `+` and template literals make V8 keep a rope
    // of every piece for as long as the key lives (a device's connection): 150 bytes of heap less per device.
    const prefix = (unit ? [this.#deviceTags, escapeTag(name), ',unit=', escapeTag(unit), ' '] : [this.#deviceTags, escapeTag(name), ' ']).join('');
    this.#byName.set(name, { unit, prefix });
    return prefix;
  }

  get size(): number {
    return this.#byName.size;
  }
}

/**
 * Puts the reading's field on `out` (its key and value apart, so a number is
 * turned into text only by the join): floats go out without an `i` (a sensor
 * reporting 41 then 41.5 must not hit a field type conflict); NaN and
 * infinity have no spelling and are refused, as schema.ts refuses them.
 */
function pushField(out: Pieces, reading: Reading): void {
  const { value } = reading;
  switch (reading.kind) {
    case 'value':
    case 'sum':
      if (typeof value !== 'number' || !Number.isFinite(value)) break;
      out.add(reading.kind === 'value' ? 'value=' : 'sum=');
      out.add(value);
      return;
    case 'text':
      if (typeof value !== 'string') break;
      out.add('text=');
      out.add(quoteString(value));
      return;
    case 'flag':
      if (typeof value !== 'boolean') break;
      out.add(value ? 'flag=true' : 'flag=false');
      return;
    case 'data':
      if (!(value instanceof Uint8Array)) break;
      out.add(`data="${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64')}"`);
      return;
  }
  throw new PulsewireError('PW_ERR_PACK_MALFORMED', `${reading.name}: value does not match kind ${String(reading.kind)}`);
}

/** Microseconds as a decimal integer (a fraction of a µs is below what is stored, not an error). */
function timestamp(timeUs: number): number {
  const whole = Math.trunc(timeUs);
  if (!Number.isSafeInteger(whole)) throw new PulsewireError('PW_ERR_TIME_RANGE', `time ${timeUs} µs is not representable`);
  return whole;
}

/**
 * One message's pieces, reused from message to message (readingLines runs to
 * its end without yielding). Filled by index and cut to length before the
 * join, never emptied: `length = 0` gives the array's storage back, and it
 * was grown again, in steps, for every message.
 */
class Pieces {
  readonly items: (string | number)[] = [];
  n = 0;

  add(item: string | number): void {
    this.items[this.n++] = item;
  }
}

const pieces = new Pieces();

/**
 * The readings as lines joined by newlines (no trailing one), as one flat
 * string: the pieces are joined once at the end. Concatenated piece by piece
 * the text was a tree of some six string objects per reading, which the spool
 * and the drainer hold from the append until InfluxDB confirms the write, so
 * the GC copied every one of them at each scavenge on the way (and each
 * reader flattened the tree again).
 */
export function readingLines(keys: SeriesKeys, readings: readonly Reading[]): string {
  pieces.n = 0;
  for (let i = 0; i < readings.length; i++) {
    const reading = readings[i]!;
    if (i > 0) pieces.add('\n');
    pieces.add(keys.prefix(reading.name, reading.unit));
    pushField(pieces, reading);
    pieces.add(' ');
    pieces.add(timestamp(reading.timeUs));
  }
  const { items } = pieces;
  items.length = pieces.n;
  return items.join('');
}
