#!/usr/bin/env node
/**
 * What a sampling heap profile (node --heap-prof, a .heapprofile) allocated,
 * by function: self bytes (allocated in the function itself) and inclusive
 * bytes (allocated in it or anything it called), each with its share of all
 * sampled bytes. A function is named by function name, file and line, so two
 * closures of one name in a file stay apart.
 *
 *   node bench/probes/heap-profile-top.mjs FILE [--top N] [--filter SUBSTR] [--inclusive] [--callees NAME]
 *
 * --filter: only functions whose url contains SUBSTR (e.g. /src/), in both tables.
 * --inclusive: also print the inclusive table (sorted by inclusive bytes).
 * --callees: for the functions whose key (name file:line) contains NAME, what
 *   they allocate themselves and what each direct callee allocates inclusive.
 *
 * The profile is a sample: every --heap-prof-interval bytes (512 KiB by default)
 * one allocation is recorded with its stack, so bytes are estimates and only
 * objects still alive or not yet collected at the sampling moment are not
 * what it measures; it counts what was allocated, collected or not.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string' }, filter: { type: 'string' }, inclusive: { type: 'boolean' }, callees: { type: 'string' } },
});
if (positionals.length !== 1) {
  console.error('usage: heap-profile-top.mjs FILE [--top N] [--filter SUBSTR] [--inclusive] [--callees NAME]');
  process.exit(2);
}
const top = Number(values.top ?? 25);
const filter = values.filter;
const profile = JSON.parse(readFileSync(positionals[0], 'utf8'));

/** key -> { self, inclusive } */
const byFunction = new Map();
/** For --callees: callee key -> inclusive bytes under the matching functions ('(self)' for their own). */
const callees = new Map();
let total = 0;

function keyOf({ functionName, url, lineNumber }) {
  const file = url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\//, 'node_modules/').replace(/^.*\/dist\//, 'dist/');
  return `${functionName || '(anonymous)'} ${file || '(native)'}:${lineNumber + 1}`;
}

function entry(key) {
  let e = byFunction.get(key);
  if (!e) byFunction.set(key, (e = { self: 0, inclusive: 0, url: '' }));
  return e;
}

/** Returns the subtree's bytes; `onStack` keeps recursion from counting a function twice inclusive. */
function walk(node, onStack) {
  const key = keyOf(node.callFrame);
  const e = entry(key);
  e.url = node.callFrame.url;
  e.self += node.selfSize;
  total += node.selfSize;
  let subtree = node.selfSize;
  const first = !onStack.has(key);
  if (first) onStack.add(key);
  const matches = values.callees !== undefined && key.includes(values.callees);
  if (matches) callees.set('(self)', (callees.get('(self)') ?? 0) + node.selfSize);
  for (const child of node.children ?? []) {
    const bytes = walk(child, onStack);
    subtree += bytes;
    if (matches) callees.set(keyOf(child.callFrame), (callees.get(keyOf(child.callFrame)) ?? 0) + bytes);
  }
  if (first) {
    onStack.delete(key);
    e.inclusive += subtree;
  }
  return subtree;
}
walk(profile.head, new Set());

const mib = (n) => (n / 1024 / 1024).toFixed(1);
const pct = (n) => ((100 * n) / total).toFixed(1);
const rows = [...byFunction].filter(([, e]) => filter === undefined || e.url.includes(filter));

function print(title, field) {
  console.log(`\n${title}`);
  console.log(`${'MiB'.padStart(8)} ${'share'.padStart(6)}  function`);
  for (const [key, e] of [...rows].sort((a, b) => b[1][field] - a[1][field]).slice(0, top)) {
    if (e[field] === 0) break;
    console.log(`${mib(e[field]).padStart(8)} ${`${pct(e[field])}%`.padStart(6)}  ${key}`);
  }
}

console.log(`sampled bytes: ${mib(total)} MiB in ${profile.samples?.length ?? '?'} samples${filter ? `; filter: url contains "${filter}"` : ''}`);
print('self (allocated in the function itself)', 'self');
if (values.inclusive) print('inclusive (in the function or what it called)', 'inclusive');
if (values.callees !== undefined) {
  console.log(`\ncallees of functions matching "${values.callees}" (inclusive)`);
  for (const [key, bytes] of [...callees].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${mib(bytes).padStart(8)} ${`${pct(bytes)}%`.padStart(6)}  ${key}`);
  }
}
