#!/usr/bin/env node
/**
 * Attributes the busy stretches of a V8 CPU profile (node --cpu-prof): runs
 * of consecutive non-idle samples at least --min-ms long, the stalls that a
 * socket's ACK waits behind. Prints how many there were, their share of the
 * profile, and within them: self time by function and inclusive time by
 * source file (each file counted once per sample), largest first.
 *
 * With --longest N it also prints the N longest stretches one by one, each
 * with its largest self times: what one 200 ms stall is made of.
 *
 *   node bench/probes/profile-stalls.mjs FILE.cpuprofile [--min-ms 15] [--top 15] [--longest 0]
 */
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
const file = args.find((a) => !a.startsWith('--'));
const opt = (name, dflt) => { const i = args.indexOf(`--${name}`); return i >= 0 ? Number(args[i + 1]) : dflt; };
const minMs = opt('min-ms', 15);
const top = opt('top', 15);
const longest = opt('longest', 0);
if (!file) { console.error('usage: profile-stalls.mjs FILE.cpuprofile [--min-ms 15] [--top 15]'); process.exit(2); }

const profile = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

const short = (url) => {
  const bare = url.replace(/^file:\/\//, '');
  const dep = /^.*\/node_modules\/((?:@[^/]+\/)?[^/]+)\/(.*)$/.exec(bare);
  return dep ? `${dep[1]}/${dep[2].replace(/^(lib\/)?(src\/)?/, '')}` : bare.replace(/^.*\/dist\//, '');
};
const label = (n) => `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url ? `${short(n.callFrame.url)}:${n.callFrame.lineNumber + 1}` : ''}`.trim();
const isIdle = (n) => n.callFrame.functionName === '(idle)';

// Sample i lasts timeDeltas[i + 1] (the delta is recorded before the next sample).
const samples = profile.samples;
const deltas = profile.timeDeltas;
const stretches = [];
let current;
for (let i = 0; i < samples.length; i++) {
  const node = byId.get(samples[i]);
  const ms = (deltas[i + 1] ?? 0) / 1000;
  if (isIdle(node)) { if (current) stretches.push(current); current = undefined; continue; }
  current ??= { ms: 0, samples: [] };
  current.ms += ms;
  current.samples.push([node, ms]);
}
if (current) stretches.push(current);

const totalMs = deltas.reduce((a, b) => a + b, 0) / 1000;
const busyMs = stretches.reduce((a, s) => a + s.ms, 0);
const long = stretches.filter((s) => s.ms >= minMs);
const longMs = long.reduce((a, s) => a + s.ms, 0);
const self = new Map();
const inclusive = new Map();
for (const s of long) {
  for (const [node, ms] of s.samples) {
    self.set(label(node), (self.get(label(node)) ?? 0) + ms);
    const files = new Set();
    for (let id = node.id; id !== undefined; id = parent.get(id)) {
      const n = byId.get(id);
      files.add(n.callFrame.url ? short(n.callFrame.url) : n.callFrame.functionName);
    }
    for (const f of files) inclusive.set(f, (inclusive.get(f) ?? 0) + ms);
  }
}
const sorted = (m) => [...m].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, ms]) => `${(100 * ms / longMs).toFixed(1).padStart(5)}%  ${k}`);
const lengths = long.map((s) => s.ms).sort((a, b) => a - b);
console.log(`profile ${(totalMs / 1000).toFixed(1)} s, busy ${(100 * busyMs / totalMs).toFixed(0)}%; ${long.length} stretches >= ${minMs} ms (${(100 * longMs / totalMs).toFixed(1)}% of the profile), median ${lengths[lengths.length >> 1]?.toFixed(0)} ms, max ${lengths.at(-1)?.toFixed(0)} ms`);
console.log('\nself time within them:');
console.log(sorted(self).join('\n'));
console.log('\ninclusive by file within them:');
console.log(sorted(inclusive).join('\n'));

if (longest > 0) {
  console.log(`\nthe ${longest} longest stretches:`);
  for (const s of [...long].sort((a, b) => b.ms - a.ms).slice(0, longest)) {
    const within = new Map();
    for (const [node, ms] of s.samples) within.set(label(node), (within.get(label(node)) ?? 0) + ms);
    const parts = [...within].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([k, ms]) => `${k} ${ms.toFixed(0)} ms`);
    console.log(`${s.ms.toFixed(0).padStart(5)} ms: ${parts.join('; ')}`);
  }
}
