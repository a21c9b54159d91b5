/**
 * A mutation fuzzer for a running hub: valid device messages (TELEMETRY,
 * RESULT, REPORTED, bare packs) are mutated (bit flips, truncation,
 * insertions, heads retyped or given other lengths, padding past the
 * message limit, sent as text) and sent over real WebSocket connections of
 * enrolled devices, one message at a time.
 *
 * Each message must be answered: with an ACK (TELEMETRY), a close code, or —
 * for a message that wants no answer — by the connection staying usable (a
 * probe TELEMETRY sent right after it is acknowledged). Every ACK code and
 * close code seen is collected, so the caller can check them against the
 * documented ones. The hub's own decoder (decodeDeviceFrame, resolvePack) is
 * the oracle for what the answer must be where it is determined: a frame it
 * refuses closes with the catalog's code, a TELEMETRY whose pack it refuses
 * gets ACK 2. Differences are listed in `mismatches`.
 *
 * Used by test/security/mutation-fuzz.test.ts (bounded) and
 * bench/probes/fuzz.ts (long).
 */
import fc from 'fast-check';
import { createHmac } from 'node:crypto';
import WebSocket from 'ws';
import { ERRORS, PulsewireError } from '../../../src/errors/catalog.js';
import { decodeDeviceFrame, decodeHubFrame } from '../../../src/protocol/codec.js';
import { encodeCbor } from '../../../src/protocol/cbor-encode.js';
import { encodeReported, encodeResult, encodeTelemetry } from '../../../src/protocol/encode.js';
import { DEFAULT_MAX_MESSAGE_BYTES } from '../../../src/protocol/limits.js';
import { AckCode } from '../../../src/protocol/messages.js';
import { resolvePack } from '../../../src/protocol/senml.js';
import { senmlRecord } from '../../../src/protocol/senml-labels.js';
import { applyMutations, mutation, type Mutation } from './cbor-arbitraries.js';

/**
 * Close codes a device can meet: the catalog's, plus those ws's frame parser
 * sends before the hub sees a message (1002 framing error, 1008 too many
 * fragments, 1009 too big) and 1006, which is what a client reports when the
 * hub drops TCP without a close frame (ws: too many pongs pending).
 */
export const DOCUMENTED_CLOSE_CODES: ReadonlySet<number> = new Set([
  ...Object.values(ERRORS).flatMap((e) => ('close' in e ? [e.close] : [])),
  1000, 1002, 1006, 1008, 1009,
]);
export const DOCUMENTED_ACK_CODES: ReadonlySet<number> = new Set(Object.values(AckCode));

/** The valid messages mutations start from; times are relative (RFC 8428: small t is "now"), so they stay in the window. */
export function seedFrames(): Uint8Array[] {
  return [
    encodeTelemetry(1, [senmlRecord({ n: 'temp', u: 'Cel', v: 21.5 })]),
    encodeTelemetry(2, [senmlRecord({ bn: 'urn:dev:fuzz:', bt: -10, bu: 'V', n: 'bat', v: 3.7 }), senmlRecord({ n: 'bat', v: 3.6, t: 5 }), senmlRecord({ n: 'bat', v: 3.5, t: 10 })]),
    encodeTelemetry(3, [senmlRecord({ n: 'door', vb: true }), senmlRecord({ n: 'state', vs: 'open' }), senmlRecord({ n: 'blob', vd: Uint8Array.of(1, 2, 3) }), senmlRecord({ n: 'energy', s: 12.25, u: 'J' })]),
    encodeTelemetry(4_000_000_000, [senmlRecord({ bver: 10, n: 'x', v: -1 })]),
    encodeResult('cmd-00000000-fuzz', 1, { ok: true, n: 3 }),
    encodeResult('c', 2),
    encodeReported({ fw: '1.2.3', interval: 60, flags: [true, false] }),
    // A bare SenML pack: fire-and-forget, no ACK.
    encodeCbor([senmlRecord({ n: 'bare', v: 1 })]),
  ];
}

/** One attacker's message: a seed, its mutations, and how it travels. */
export type FuzzCase = { seed: number; mutations: Mutation[]; pad: boolean; asText: boolean };

export const fuzzCase = (seeds: number): fc.Arbitrary<FuzzCase> => fc.record({
  seed: fc.nat({ max: seeds - 1 }),
  mutations: fc.array(mutation, { minLength: 1, maxLength: 3 }),
  pad: fc.oneof({ weight: 49, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
  asText: fc.oneof({ weight: 49, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
});

export type FuzzReport = {
  messages: number;
  connections: number;
  /** ACK code -> how many. */
  acks: Map<number, number>;
  /** Close code -> how many. */
  closes: Map<number, number>;
  /** Answers that differ from the oracle (at most 20 kept), with the message in hex. */
  mismatches: string[];
  /** Messages that got no answer before the ceiling. */
  unanswered: string[];
};

export type FuzzOptions = {
  deviceUrl: string;
  enrollmentKey: string;
  /** Connections rotate over this many device ids. */
  devices?: number;
  idPrefix?: string;
  cases: Iterable<FuzzCase>;
  maxMessageBytes?: number;
  /** Ceiling for one answer (a busy machine is slow, a wrong hub is silent). */
  answerTimeoutMs?: number;
};

type Expectation =
  | { kind: 'close'; code: number; why: string }
  | { kind: 'ack'; seq: number; code?: number; why: string }
  | { kind: 'silent'; bare?: boolean; why: string };

/** What the protocol says the hub must answer, decided by the hub's own decoder. */
export function expectationFor(bytes: Uint8Array, asText: boolean, maxBytes: number): Expectation {
  if (bytes.length > maxBytes) return { kind: 'close', code: 1009, why: 'larger than the message limit' };
  if (asText) {
    const utf8 = (() => { try { new TextDecoder('utf-8', { fatal: true }).decode(bytes); return true; } catch { return false; } })();
    return utf8 ? { kind: 'close', code: 1003, why: 'text frame' } : { kind: 'close', code: 1007, why: 'text frame, invalid UTF-8' };
  }
  const message = decodeDeviceFrame(bytes, { maxBytes });
  if (message instanceof PulsewireError) return { kind: 'close', code: message.spec.close!, why: message.code };
  const pack = message.type === 1 || message.type === 'bare-pack' ? resolvePack(message.pack, { nowUs: Date.now() * 1000 }) : undefined;
  switch (message.type) {
    case 1:
      return pack instanceof PulsewireError && pack.code === 'PW_ERR_PACK_MALFORMED'
        ? { kind: 'ack', seq: message.seq, code: AckCode.MALFORMED_PACK, why: pack.message }
        : { kind: 'ack', seq: message.seq, why: 'TELEMETRY' };
    case 'bare-pack':
      return pack instanceof PulsewireError && pack.code === 'PW_ERR_PACK_MALFORMED'
        ? { kind: 'close', code: 1007, why: `bare pack: ${pack.message}` }
        : { kind: 'silent', bare: true, why: 'bare pack' };
    default:
      return { kind: 'silent', why: message.type === 4 ? 'RESULT' : 'REPORTED' };
  }
}

/** A device connection that queues what the hub sends and remembers how it closed. */
class FuzzConnection {
  readonly acks = new Map<number, number>();
  closed: { code: number; reason: string } | undefined;
  #wake: (() => void) | undefined;

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data: Buffer) => {
      const m = decodeHubFrame(new Uint8Array(data));
      if (!(m instanceof PulsewireError) && m.type === 2) this.acks.set(m.seq, m.code ?? 0);
      this.#wake?.();
    });
    socket.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      this.#wake?.();
    });
    socket.on('error', () => {});
  }

  static open(url: string, id: string, secret: string): Promise<FuzzConnection> {
    const socket = new WebSocket(url, ['pulsewire.v1'], {
      headers: { authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}` },
      perMessageDeflate: false,
    });
    return new Promise((resolve, reject) => {
      socket.once('open', () => resolve(new FuzzConnection(socket)));
      socket.once('unexpected-response', (_req, res) => reject(new Error(`handshake of ${id} answered ${res.statusCode}`)));
      socket.once('error', reject);
    });
  }

  /** Resolves true once `done()` holds, false at the deadline. */
  async until(done: () => boolean, deadline: number): Promise<boolean> {
    while (!done()) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => { clearTimeout(timer); resolve(); };
      });
      this.#wake = undefined;
    }
    return true;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.socket.close(1000);
    await this.until(() => this.closed !== undefined, Date.now() + 10_000);
  }
}

/** Probe seqs: far from the seeds' and counted up, so a mutated seq rarely meets one (and is checked when it does). */
const PROBE_SEQ_BASE = 3_000_000_000;

export async function fuzzOverSockets(opts: FuzzOptions): Promise<FuzzReport> {
  const seeds = seedFrames();
  const maxBytes = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const devices = opts.devices ?? 4;
  const idPrefix = opts.idPrefix ?? 'fuzz';
  const answerTimeoutMs = opts.answerTimeoutMs ?? 15_000;
  const report: FuzzReport = { messages: 0, connections: 0, acks: new Map(), closes: new Map(), mismatches: [], unanswered: [] };
  const count = (map: Map<number, number>, code: number) => map.set(code, (map.get(code) ?? 0) + 1);
  const mismatch = (text: string) => { if (report.mismatches.length < 20) report.mismatches.push(text); };
  let connection: FuzzConnection | undefined;
  let probeSeq = PROBE_SEQ_BASE;

  for (const c of opts.cases) {
    let bytes = applyMutations(seeds[c.seed]!, c.mutations);
    if (c.pad) bytes = Uint8Array.from([...bytes, ...new Uint8Array(maxBytes + 1 - bytes.length > 0 ? maxBytes + 1 - bytes.length : 1)]);
    const expected = expectationFor(bytes, c.asText, maxBytes);
    const hex = bytes.length > 200 ? `${Buffer.from(bytes.subarray(0, 100)).toString('hex')}… (${bytes.length} bytes)` : Buffer.from(bytes).toString('hex');
    if (!connection || connection.closed) {
      const id = `${idPrefix}-${report.connections % devices}`;
      connection = await FuzzConnection.open(opts.deviceUrl, id, createHmac('sha256', opts.enrollmentKey).update(id).digest('base64url'));
      report.connections++;
    }
    const conn = connection;
    report.messages++;
    conn.socket.send(bytes, { binary: !c.asText });
    const probe = expected.kind === 'close' ? undefined : ++probeSeq;
    if (probe !== undefined && !(expected.kind === 'ack' && expected.seq === probe)) conn.socket.send(encodeTelemetry(probe, [senmlRecord({ n: 'probe', v: 1 })]));
    const deadline = Date.now() + answerTimeoutMs;
    const answered = await conn.until(() => conn.closed !== undefined || (expected.kind !== 'close'
      && (expected.kind !== 'ack' || conn.acks.has(expected.seq)) && probe !== undefined && conn.acks.has(probe)), deadline);
    for (const [seq, code] of conn.acks) {
      count(report.acks, code);
      conn.acks.delete(seq);
      if (expected.kind === 'ack' && seq === expected.seq && expected.code !== undefined && code !== expected.code) {
        mismatch(`ACK ${code} where ${expected.code} was due (${expected.why}): ${hex}`);
      }
    }
    if (conn.closed) {
      count(report.closes, conn.closed.code);
      const namesBudget = expected.kind === 'silent' && expected.bare && conn.closed.code === 1007 && /names/.test(conn.closed.reason);
      if (expected.kind === 'close' && conn.closed.code !== expected.code) mismatch(`closed ${conn.closed.code} "${conn.closed.reason}" where ${expected.code} was due (${expected.why}): ${hex}`);
      // A message the decoder accepts must not be refused as malformed; a limit's close (rate, names) is an answer.
      if (expected.kind !== 'close' && !namesBudget && [1003, 1007, 1009].includes(conn.closed.code)) {
        mismatch(`closed ${conn.closed.code} "${conn.closed.reason}" for a valid ${expected.why}: ${hex}`);
      }
      continue;
    }
    if (expected.kind === 'close') mismatch(`still open where close ${expected.code} was due (${expected.why}): ${hex}`);
    if (!answered) report.unanswered.push(`${expected.why}: ${hex}`);
    if (expected.kind === 'close') {
      await conn.close();
      connection = undefined;
    }
  }
  await connection?.close();
  return report;
}

/** `n` fuzz cases from `seed`, generated as needed. */
export function* fuzzCases(seed: number, n: number): Generator<FuzzCase> {
  const arbitrary = fuzzCase(seedFrames().length);
  const chunk = 500;
  for (let done = 0, round = 0; done < n; round++) {
    const take = Math.min(chunk, n - done);
    yield* fc.sample(arbitrary, { seed: seed + round, numRuns: take });
    done += take;
  }
}
