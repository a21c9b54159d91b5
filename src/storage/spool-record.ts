/**
 * A spool record's text: the messages of one commit, each its points as
 * InfluxDB line protocol, so what the drainer writes is what was stored,
 * with no JSON (and no point objects) in between.
 *
 *   L<at>\n                                  at: ms since the epoch
 *   <deviceId>\t<count>\t<length>\n<lines>\n one per message
 *
 * `length` is the lines' length in UTF-16 code units (what JS strings count),
 * so a message is cut out with one slice, whatever its lines hold (a string
 * field may hold a newline). Device ids are [A-Za-z0-9._-] (no tab, no newline).
 *
 * Spools written before this format hold JSON: `{"at":..,"m":[{"d":..,"p":[IPoint]}]}`
 * (group commit) or `{"d":..,"p":[..],"at":..}` (one message each). Those are
 * read as they are and their points turned into line protocol here, so a hub
 * upgraded over a data dir with entries still spooled drains them.
 */
import type { IPoint } from 'influx';
import { pointsLines } from './line-protocol.js';

/** One message in a record. */
export type StoredMessage = { readonly d: string; readonly lines: string; readonly count: number };

export type DecodedRecord = { at: number; messages: StoredMessage[] };

const MARK = 'L';

export function recordHead(at: number): string {
  return `${MARK}${at}\n`;
}

/** A message's line before its lines: `<deviceId>\t<count>\t<length>\n` (ASCII, so its length is its bytes). */
function messageHeader(message: StoredMessage): string {
  return `${message.d}\t${message.count}\t${message.lines.length}\n`;
}

/** A message's UTF-8 bytes in a record (header, lines, newline), counted without making its text (measuring a concatenation flattens it: a copy of the lines). */
export function messageBytes(message: StoredMessage): number {
  return messageHeader(message).length + Buffer.byteLength(message.lines, 'utf8') + 1;
}

/**
 * A record's UTF-8 bytes (its head and every message, in the format at the
 * top of this file), written once into one buffer of `bytes` (the
 * sum of head.length and each messageBytes). Built as one string instead, the
 * record was a concatenation that lmdb flattened (a copy of every line) and
 * then encoded (another): the two largest allocations of the ingest path
 * after the lines themselves.
 */
export function encodeRecord(head: string, messages: readonly StoredMessage[], bytes: number): Buffer {
  const out = Buffer.allocUnsafe(bytes);
  let pos = out.write(head, 0, 'latin1');
  for (const message of messages) {
    pos += out.write(messageHeader(message), pos, 'latin1');
    pos += out.write(message.lines, pos, 'utf8');
    out[pos++] = 0x0a;
  }
  if (pos !== bytes) throw new Error(`spool record is ${pos} bytes, counted ${bytes}`);
  return out;
}

type LegacyMessage = { d: string; p: IPoint[] };
type LegacyRecord = { at: number; m: LegacyMessage[] } | (LegacyMessage & { at: number });

function decodeLegacy(value: string): DecodedRecord {
  const record = JSON.parse(value) as LegacyRecord;
  const messages = 'm' in record ? record.m : [record];
  return { at: record.at, messages: messages.map((m) => ({ d: m.d, lines: pointsLines(m.p), count: m.p.length })) };
}

/** When the record was started, without cutting out its messages. */
export function recordAt(value: string): number {
  if (!value.startsWith(MARK)) return (JSON.parse(value) as { at: number }).at;
  return Number(value.slice(1, value.indexOf('\n')));
}

export function decodeRecord(value: string): DecodedRecord {
  if (!value.startsWith(MARK)) return decodeLegacy(value);
  let pos = value.indexOf('\n');
  const at = Number(value.slice(1, pos));
  pos++;
  const messages: StoredMessage[] = [];
  while (pos < value.length) {
    const tab1 = value.indexOf('\t', pos);
    const tab2 = value.indexOf('\t', tab1 + 1);
    const end = value.indexOf('\n', tab2 + 1);
    if (tab1 < 0 || tab2 < 0 || end < 0) throw new Error(`spool record damaged at offset ${pos}`);
    const length = Number(value.slice(tab2 + 1, end));
    const lines = value.slice(end + 1, end + 1 + length);
    messages.push({ d: value.slice(pos, tab1), lines, count: Number(value.slice(tab1 + 1, tab2)) });
    pos = end + 1 + length + 1;
  }
  return { at, messages };
}
