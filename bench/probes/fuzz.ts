/**
 * Probe (not a scenario; prints lines, writes nothing): the long runs of the
 * fuzzers that `npm test` runs bounded (test/security/protocol-fuzz.test.ts
 * and mutation-fuzz.test.ts, SECURITY.md).
 *
 * 1. Every property of test/security/fuzz/protocol-properties.ts with
 *    `--runs` runs (default 100,000) from a new seed (or `--seed`), printed so
 *    a failure can be replayed: `--seed S --runs N`.
 * 2. The mutation fuzzer over real sockets against the built hub as a process
 *    (managed influxd, inspector on for a full GC): `--socket-messages`
 *    (default 50,000) messages; after a warm-up and then every tenth of the
 *    run, a full GC in the hub and its heap used (/metrics), so a leak shows
 *    as a slope. `--socket-messages 0` skips it.
 *
 *   npm run build && npx tsx bench/probes/fuzz.ts [--runs N] [--socket-messages N] [--seed S]
 *
 * Exits 1 when a property fails, a message was answered otherwise than the
 * protocol says, or an ACK/close code outside the documented ones was seen.
 */
import fc from 'fast-check';
import { parseArgs } from 'node:util';
import { PROTOCOL_PROPERTIES } from '../../test/security/fuzz/protocol-properties.js';
import { DOCUMENTED_ACK_CODES, DOCUMENTED_CLOSE_CODES, fuzzCases, fuzzOverSockets } from '../../test/security/fuzz/socket-fuzzer.js';
import { BENCH_ENROLLMENT_KEY, startHubProcess } from '../lib/hub-process.js';

const { values } = parseArgs({ options: { runs: { type: 'string' }, 'socket-messages': { type: 'string' }, seed: { type: 'string' } } });
const runs = Number(values.runs ?? 100_000);
const socketMessages = Number(values['socket-messages'] ?? 50_000);
const seed = Number(values.seed ?? (Date.now() % 2 ** 31));
let failed = false;

console.log(`seed ${seed}`);
for (const { name, property } of PROTOCOL_PROPERTIES) {
  const started = Date.now();
  const result = fc.check(property(), { seed, numRuns: runs });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  if (result.failed) {
    failed = true;
    console.log(`FAIL ${name} (${seconds} s)\n${fc.defaultReportMessage(result)}`);
  } else console.log(`ok   ${name}: ${result.numRuns} runs, ${seconds} s`);
}

if (socketMessages > 0) {
  const hub = await startHubProcess({ inspector: true });
  try {
    const heapMiB = async () => {
      await hub.collectGarbage();
      return (await hub.metrics()).get('pulsewire_nodejs_heap_size_used_bytes')! / 2 ** 20;
    };
    const cases = fuzzCases(seed, 2_000 + socketMessages);
    const take = function* (n: number) { for (let i = 0; i < n; i++) { const next = cases.next(); if (next.done) return; yield next.value; } };
    const fuzz = (n: number) => fuzzOverSockets({ deviceUrl: hub.deviceUrl, enrollmentKey: BENCH_ENROLLMENT_KEY, cases: take(n), idPrefix: `fuzz-${seed}` });
    await fuzz(2_000);
    const baseline = await heapMiB();
    console.log(`socket fuzz: heap after 2,000 messages of warm-up ${baseline.toFixed(1)} MiB`);
    const acks = new Map<number, number>();
    const closes = new Map<number, number>();
    const step = Math.max(1, Math.ceil(socketMessages / 10));
    const started = Date.now();
    for (let done = 0; done < socketMessages; done += step) {
      const report = await fuzz(Math.min(step, socketMessages - done));
      for (const [code, n] of report.acks) acks.set(code, (acks.get(code) ?? 0) + n);
      for (const [code, n] of report.closes) closes.set(code, (closes.get(code) ?? 0) + n);
      for (const line of [...report.mismatches, ...report.unanswered.map((u) => `unanswered: ${u}`)]) {
        failed = true;
        console.log(`MISMATCH ${line}`);
      }
      const heap = await heapMiB();
      console.log(`socket fuzz: ${done + report.messages} messages, ${((Date.now() - started) / 1000).toFixed(0)} s, heap ${heap.toFixed(1)} MiB (${(heap - baseline >= 0 ? '+' : '')}${(heap - baseline).toFixed(1)})`);
    }
    const undocumented = [...[...acks.keys()].filter((c) => !DOCUMENTED_ACK_CODES.has(c)).map((c) => `ACK ${c}`), ...[...closes.keys()].filter((c) => !DOCUMENTED_CLOSE_CODES.has(c)).map((c) => `close ${c}`)];
    if (undocumented.length > 0) {
      failed = true;
      console.log(`UNDOCUMENTED ${undocumented.join(', ')}`);
    }
    console.log(`socket fuzz: ACK codes ${JSON.stringify(Object.fromEntries(acks))}, close codes ${JSON.stringify(Object.fromEntries(closes))}, hub ${hub.exitStatus() ?? 'still running'}`);
  } finally {
    await hub.stop();
  }
}
process.exit(failed ? 1 : 0);
