/**
 * InfluxDB 1.x line protocol, written by the hub itself (the spool keeps it,
 * the writer posts it) and read back where a point must be shown as an object
 * again (dead letters, a refused entry's lines one by one).
 *
 * The bytes are those node-influx 5.12 writes for the same point (tags in
 * the order given, fields sorted, numbers with String(), strings quoted with
 * `"` and `\` escaped, and its quirk of doubling the backslash of the first
 * `\'`), so a point stored through this path is stored exactly as before;
 * test/storage/line-protocol.test.ts holds the two side by side. One
 * difference: the measurement is escaped (node-influx writes it raw); ours
 * are constants that need no escaping, so no byte changes.
 */
import type { IPoint } from 'influx';
import { PulsewireError } from '../errors/catalog.js';

const TAG_SPECIAL = /[,= ]/;
const TAG_SPECIAL_ALL = /[,= ]/g;
const QUOTED_SPECIAL = /["\\]/;
const QUOTED_SPECIAL_ALL = /["\\]/g;

/** node-influx's Escaper does this to every string first (once, not globally): kept for identical bytes. */
function quirk(value: string): string {
  return value.includes("\\'") ? value.replace(/\\'/, "\\\\'") : value;
}

/** A tag key, tag value or field key. */
export function escapeTag(value: string): string {
  const text = quirk(value);
  return TAG_SPECIAL.test(text) ? text.replace(TAG_SPECIAL_ALL, '\\$&') : text;
}

/** A string field value, with its quotes. */
export function quoteString(value: string): string {
  const text = quirk(value);
  return QUOTED_SPECIAL.test(text) ? `"${text.replace(QUOTED_SPECIAL_ALL, '\\$&')}"` : `"${text}"`;
}

function escapeMeasurement(value: string): string {
  return /[, ]/.test(value) ? value.replace(/[, ]/g, '\\$&') : value;
}

function fieldText(value: unknown): string {
  if (typeof value === 'string') return quoteString(value);
  return String(value);
}

/** One point as one line (no newline), as node-influx's writePoints would write it. */
export function pointLine(point: IPoint): string {
  let line = escapeMeasurement(point.measurement ?? '');
  const tags = point.tags ?? {};
  for (const key of Object.keys(tags)) line += `,${escapeTag(key)}=${escapeTag(tags[key]!)}`;
  const fields = (point.fields ?? {}) as Record<string, unknown>;
  const keys = Object.keys(fields).sort();
  for (let i = 0; i < keys.length; i++) line += `${i === 0 ? ' ' : ','}${escapeTag(keys[i]!)}=${fieldText(fields[keys[i]!])}`;
  const { timestamp } = point;
  // As node-influx: a falsy timestamp is left out (InfluxDB then stamps the point itself).
  if (timestamp) {
    if (typeof timestamp === 'number') line += ` ${String(timestamp)}`;
    else if (typeof timestamp === 'string' && /^-?\d+$/.test(timestamp)) line += ` ${timestamp}`;
    else throw new PulsewireError('PW_ERR_STORAGE_REJECTED', `timestamp ${String(timestamp)} is not an integer`);
  }
  return line;
}

/** Points as line-protocol text, one line each, joined by newlines. */
export function pointsLines(points: readonly IPoint[]): string {
  let text = '';
  for (let i = 0; i < points.length; i++) text += (i === 0 ? '' : '\n') + pointLine(points[i]!);
  return text;
}

/**
 * The lines of a text, split at the newlines that end a line: a string field
 * may hold a newline of its own (InfluxDB 1.x reads it inside the quotes).
 * Quotes count only in the field section, after the first unescaped space.
 */
export function splitLines(text: string): string[] {
  const lines: string[] = [];
  let start = 0;
  let section = 0; // 0: measurement and tags, 1: fields, 2: timestamp
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5c /* \ */) {
      i++;
      continue;
    }
    if (quoted) {
      if (c === 0x22) quoted = false;
      continue;
    }
    if (c === 0x22 && section === 1) quoted = true;
    else if (c === 0x20 && section < 2) section++;
    else if (c === 0x0a) {
      lines.push(text.slice(start, i));
      start = i + 1;
      section = 0;
    }
  }
  if (start < text.length) lines.push(text.slice(start));
  return lines;
}

/** Unescapes a tag key or value, measurement or field key (a backslash before `,`, `=` or space). */
function unescapeKey(text: string): string {
  return text.replace(/\\([,= ])/g, '$1');
}

/** Splits at `sep` where it is not escaped (and, with quotes, not inside a quoted string). */
function splitUnescaped(text: string, sep: number, quotes: boolean): string[] {
  const parts: string[] = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5c) i++;
    else if (quotes && c === 0x22) quoted = !quoted;
    else if (c === sep && !quoted) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

function fieldValue(text: string): number | string | boolean {
  if (text.startsWith('"')) return text.slice(1, -1).replace(/\\(["\\])/g, '$1');
  if (text === 'true' || text === 'false') return text === 'true';
  if (/^-?\d+i$/.test(text)) return Number(text.slice(0, -1));
  return Number(text);
}

/** Where the measurement and tags end: the first unescaped space (quotes mean nothing there). */
function keyEnd(line: string): number {
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (c === 0x5c) i++;
    else if (c === 0x20) return i;
  }
  return line.length;
}

/**
 * One line back as a point (the inverse of pointLine for what the hub
 * writes); for dead letters and tests. What node-influx's quirk did to a
 * `\'` is read back as InfluxDB stores it, with the backslash doubled.
 */
export function parseLine(line: string): IPoint {
  const end = keyEnd(line);
  const [measurement = '', ...tagPairs] = splitUnescaped(line.slice(0, end), 0x2c, false);
  const [fieldsText = '', timestamp] = splitUnescaped(line.slice(end + 1), 0x20, true);
  const point: IPoint = { measurement: unescapeKey(measurement) };
  if (tagPairs.length > 0) {
    const tags: Record<string, string> = {};
    for (const pair of tagPairs) {
      const [name = '', value = ''] = splitUnescaped(pair, 0x3d, false);
      tags[unescapeKey(name)] = unescapeKey(value);
    }
    point.tags = tags;
  }
  const fields: Record<string, number | string | boolean> = {};
  for (const pair of splitUnescaped(fieldsText, 0x2c, true)) {
    const at = splitUnescaped(pair, 0x3d, true);
    fields[unescapeKey(at[0] ?? '')] = fieldValue(at.slice(1).join('='));
  }
  point.fields = fields;
  if (timestamp !== undefined) point.timestamp = timestamp;
  return point;
}

/** Every line of a text back as points. */
export function parseLines(text: string): IPoint[] {
  return splitLines(text).map(parseLine);
}
