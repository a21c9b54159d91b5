/**
 * What a heap snapshot holds more than another, by constructor (the shallow
 * sizes DevTools' "Summary" view adds up), divided by a count: e.g. the live
 * JS objects each connected device costs the hub. A snapshot is taken after
 * a full GC, so this is live memory only, garbage excluded.
 *
 *   node bench/probes/heap-snapshot-diff.mjs BEFORE.heapsnapshot AFTER.heapsnapshot [--per N] [--top K]
 *
 * Prints one JSON line: total bytes (after - before) / N and the top K
 * groups. Groups are "object Name" for objects (Name: the constructor),
 * and one group per other node type (strings, arrays, closures, code,
 * system objects by name).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { per: { type: 'string' }, top: { type: 'string' } } });
if (positionals.length !== 2) {
  console.error('usage: node bench/probes/heap-snapshot-diff.mjs BEFORE.heapsnapshot AFTER.heapsnapshot [--per N] [--top K]');
  process.exit(2);
}
const per = Number(values.per ?? 1);
const top = Number(values.top ?? 25);

/** Shallow bytes by group. */
function groups(file) {
  const snap = JSON.parse(readFileSync(file, 'utf8'));
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const { nodes, strings } = snap;
  const out = new Map();
  let total = 0;
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + typeAt]];
    const size = nodes[i + sizeAt];
    total += size;
    let key;
    if (type === 'object') key = `object ${strings[nodes[i + nameAt]]}`;
    else if (type === 'hidden' || type === 'native' || type === 'synthetic') key = `${type} ${strings[nodes[i + nameAt]]}`.slice(0, 80);
    else key = `(${type})`;
    const g = out.get(key) ?? { bytes: 0, count: 0 };
    g.bytes += size;
    g.count += 1;
    out.set(key, g);
  }
  return { total, out };
}

const before = groups(positionals[0]);
const after = groups(positionals[1]);
const rows = [];
for (const [key, a] of after.out) {
  const b = before.out.get(key) ?? { bytes: 0, count: 0 };
  rows.push({ group: key, bytesPer: +((a.bytes - b.bytes) / per).toFixed(1), countPer: +((a.count - b.count) / per).toFixed(2) });
}
rows.sort((x, y) => y.bytesPer - x.bytesPer);
console.log(JSON.stringify({
  per, bytesPer: +((after.total - before.total) / per).toFixed(1), before: before.total, after: after.total, top: rows.slice(0, top),
}));
