/**
 * Mutated device messages over real sockets to a real hub (the fuzzer is
 * fuzz/socket-fuzzer.ts): every message is answered with an ACK code or a
 * close code, all of them documented ones; where the protocol decides the
 * answer (a frame the decoder refuses, a TELEMETRY with a malformed pack)
 * it is exactly that answer; the hub stays up; and its heap after the run is
 * where it was before it, within a bound three times what it measured (a
 * session kept per closed connection would show).
 *
 * Bounded: a fixed seed and 1,200 messages. Long runs with fresh seeds:
 * `npx tsx bench/probes/fuzz.ts --socket-messages 100000` (SECURITY.md).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectGarbage } from '../support/gc.js';
import { ENROLLMENT_KEY, startHub, type TestHub } from '../support/hub.js';
import { waitFor } from '../support/wait.js';
import { expectHubServes } from './attack-helpers.js';
import { DOCUMENTED_ACK_CODES, DOCUMENTED_CLOSE_CODES, fuzzCases, fuzzOverSockets } from './fuzz/socket-fuzzer.js';

const SEED = 18_1818;
const WARM_UP = 600;
const MESSAGES = 1_200;
/**
 * Heap growth allowed over the measured run (the hub and this test share the process). Measured:
 * 0.7 to 1.1 MiB (compiled code, mostly). A hub that kept each closed connection's session would
 * add about 4 KiB per connection: 4 MiB over the run's thousand connections, past this bound.
 */
const HEAP_BOUND_BYTES = 3 * 1024 * 1024;

function heapUsed(): number {
  collectGarbage();
  return process.memoryUsage().heapUsed;
}

describe('mutation fuzzer over real sockets', () => {
  let hub: TestHub;
  // The live stream's resume ring (a minute of events, for SSE) would hold every online/offline of the
  // run: bounded, but it would hide a leak; one tick of it is enough here.
  beforeAll(async () => { hub = await startHub({}, { live: { ringTicks: 1 } }); });
  afterAll(async () => { await hub?.close(); });

  it(`answers ${MESSAGES} mutated messages with documented ACK and close codes, as the protocol decides; the heap stays where it was`, { timeout: 240_000 }, async () => {
    const cases = [...fuzzCases(SEED, WARM_UP + MESSAGES)];
    // Warm-up: first connections, first names, JIT and lmdb's first pages are not a leak.
    const warm = await fuzzOverSockets({ deviceUrl: hub.deviceUrl, enrollmentKey: ENROLLMENT_KEY, cases: cases.slice(0, WARM_UP) });
    expect(warm.mismatches).toEqual([]);
    await waitFor(() => hub.app.gateway.runtimes.onlineCount === 0, { what: 'fuzz connections closed' });
    const before = heapUsed();

    const report = await fuzzOverSockets({ deviceUrl: hub.deviceUrl, enrollmentKey: ENROLLMENT_KEY, cases: cases.slice(WARM_UP) });
    await waitFor(() => hub.app.gateway.runtimes.onlineCount === 0, { what: 'fuzz connections closed' });
    const after = heapUsed();

    console.log(`mutation fuzz: ${report.messages} messages, ${report.connections} connections, ACKs ${JSON.stringify([...report.acks])}, closes ${JSON.stringify([...report.closes])}, heap ${((after - before) / 1024).toFixed(0)} KiB`);
    expect(report.messages).toBe(MESSAGES);
    expect(report.mismatches).toEqual([]);
    expect(report.unanswered).toEqual([]);
    expect([...report.acks.keys()].filter((code) => !DOCUMENTED_ACK_CODES.has(code))).toEqual([]);
    expect([...report.closes.keys()].filter((code) => !DOCUMENTED_CLOSE_CODES.has(code))).toEqual([]);
    // The run reached both kinds of answer, and the common refusals: a fuzzer that only ever
    // produced one outcome would prove little.
    expect(report.acks.get(0)).toBeGreaterThan(0);
    expect(report.acks.get(2)).toBeGreaterThan(0);
    expect(report.closes.get(1007)).toBeGreaterThan(0);
    expect(report.closes.get(1009)).toBeGreaterThan(0);

    expect(after - before).toBeLessThan(HEAP_BOUND_BYTES);
    await expectHubServes(hub.deviceUrl);
  });
});
