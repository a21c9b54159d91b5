/**
 * Properties of the hub's device-facing parsers, over input an attacker
 * chooses: the frame decoder (src/protocol/codec.ts), the CBOR pre-scan
 * (src/protocol/cbor-scan.ts) and SenML resolution (src/protocol/senml.ts).
 * Each never throws, returns only the typed errors the catalog maps to a
 * close or ACK code, and what it accepts holds the invariants storage relies
 * on. The pre-scan is also checked against an oracle written from RFC 8949
 * here: it accepts exactly the well-formed, tag-free items within the depth
 * limit, and cbor-x decodes everything it accepts.
 *
 * Shared by test/security/protocol-fuzz.test.ts (a fixed seed, a few hundred
 * runs each) and bench/probes/fuzz.ts (as many runs as asked, a new seed).
 */
import fc from 'fast-check';
import { PulsewireError, type ErrorCode } from '../../../src/errors/catalog.js';
import { decodeCbor } from '../../../src/protocol/cbor-decode.js';
import { encodeCbor } from '../../../src/protocol/cbor-encode.js';
import { inspectCbor } from '../../../src/protocol/cbor-scan.js';
import { decodeDeviceBatch, decodeDeviceFrame, decodeHubFrame, encodeTelemetry } from '../../../src/protocol/codec.js';
import {
  DEFAULT_MAX_FUTURE_SECONDS, DEFAULT_MAX_PAST_SECONDS, MAX_CBOR_DEPTH, MAX_SENML_NAME_LENGTH, MAX_SENML_UNIT_LENGTH, SEQ_MODULUS,
} from '../../../src/protocol/limits.js';
import { resolvePack } from '../../../src/protocol/senml.js';
import { SENML_LABELS } from '../../../src/protocol/senml-labels.js';
import { cborItem, deepNesting, mutatedCbor, writeCbor, type CborItem } from './cbor-arbitraries.js';

const CBOR_ERRORS = new Set<ErrorCode>(['PW_ERR_CBOR_MALFORMED', 'PW_ERR_CBOR_TAG', 'PW_ERR_CBOR_TOO_DEEP', 'PW_ERR_CBOR_TOO_MANY_ITEMS']);
const FRAME_ERRORS = new Set<ErrorCode>([...CBOR_ERRORS, 'PW_ERR_FRAME_TOO_BIG', 'PW_ERR_MESSAGE_SHAPE', 'PW_ERR_MESSAGE_TYPE', 'PW_ERR_MESSAGE_DIRECTION']);
const PACK_ERRORS = new Set<ErrorCode>(['PW_ERR_PACK_MALFORMED', 'PW_ERR_TIME_RANGE']);

/** A fixed clock, so a property's outcome does not depend on the day it runs. */
const NOW_US = Date.UTC(2026, 0, 15, 12) * 1000;

export type NamedProperty = { name: string; property: () => fc.IProperty<any> };

/** A refusal as the gateway needs it: a catalog code of this group, a close code, a reason that fits a close frame. */
function expectRefusal(error: PulsewireError, allowed: Set<ErrorCode>): void {
  if (!allowed.has(error.code)) throw new Error(`unexpected error code ${error.code}: ${error.message}`);
  if (error.spec.close === undefined && !PACK_ERRORS.has(error.code)) throw new Error(`${error.code} has no close code`);
  if (Buffer.byteLength(error.closeReason) > 123) throw new Error(`close reason of ${Buffer.byteLength(error.closeReason)} bytes`);
  // The scan's promise: cbor-x never meets what it cannot decode.
  if (error.detail === 'undecodable CBOR') throw new Error(`the pre-scan let through what cbor-x cannot decode: ${String(error.cause)}`);
}

/** Calls `f`; a throw is the failure (fast-check reports the input that caused it). */
function noThrow<T>(what: string, f: () => T): T {
  try {
    return f();
  } catch (err) {
    throw new Error(`${what} threw: ${err instanceof Error ? err.stack : String(err)}`);
  }
}

function checkDeviceFrame(bytes: Uint8Array): void {
  const result = noThrow('decodeDeviceFrame', () => decodeDeviceFrame(bytes, { maxBytes: 64 * 1024 }));
  if (result instanceof PulsewireError) return expectRefusal(result, FRAME_ERRORS);
  if (result instanceof Error) throw new Error(`an untyped error came back: ${result.message}`);
  switch (result.type) {
    case 1:
      if (!(Number.isInteger(result.seq) && result.seq >= 0 && result.seq < SEQ_MODULUS)) throw new Error(`seq ${result.seq} accepted`);
      // The pack of a valid envelope goes on to SenML resolution: that must hold too.
      checkPack(result.pack);
      return;
    case 'bare-pack': checkPack(result.pack); return;
    case 4: case 5: return;
    default: throw new Error(`decoded to an unknown message ${JSON.stringify(result)}`);
  }
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9\-:./_]*$/;

function checkPack(pack: unknown): void {
  const result = noThrow('resolvePack', () => resolvePack(pack, { nowUs: NOW_US }));
  if (result instanceof PulsewireError) {
    if (!PACK_ERRORS.has(result.code)) throw new Error(`resolvePack returned ${result.code}`);
    if (result.spec.ack === undefined) throw new Error(`${result.code} has no ACK code`);
    return;
  }
  if (!Array.isArray(pack) || result.readings.length !== pack.length) throw new Error('one reading per record expected');
  for (const r of result.readings) {
    if (!(NAME.test(r.name) && r.name.length <= MAX_SENML_NAME_LENGTH)) throw new Error(`name ${JSON.stringify(r.name)} accepted`);
    if (r.unit !== undefined && !(r.unit.length > 0 && r.unit.length <= MAX_SENML_UNIT_LENGTH && /^[\x20-\x7e]*$/.test(r.unit))) throw new Error(`unit ${JSON.stringify(r.unit)} accepted`);
    if (!Number.isSafeInteger(r.timeUs)) throw new Error(`time ${r.timeUs} is not whole microseconds`);
    if (r.timeUs < NOW_US - DEFAULT_MAX_PAST_SECONDS * 1e6 || r.timeUs > NOW_US + DEFAULT_MAX_FUTURE_SECONDS * 1e6) throw new Error(`time ${r.timeUs} outside the window accepted`);
    const ok = {
      value: typeof r.value === 'number' && Number.isFinite(r.value),
      sum: typeof r.value === 'number' && Number.isFinite(r.value),
      text: typeof r.value === 'string' && !/[\u0000-\u001f\u007f-\u009f]/.test(r.value),
      flag: typeof r.value === 'boolean',
      data: r.value instanceof Uint8Array,
    }[r.kind];
    if (!ok) throw new Error(`a ${r.kind} reading with value ${String(r.value)} accepted`);
  }
}

/**
 * What RFC 8949 (and the protocol: no tags, depth 16) says of a generated
 * item: valid, invalid, or unknown where a stray break or a map that ends
 * after a key makes the outcome depend on its neighbours.
 */
type Verdict = 'valid' | 'invalid' | 'unknown';

function verdict(item: CborItem, depth = 0): Verdict {
  const all = (verdicts: Verdict[]): Verdict => (verdicts.includes('unknown') ? 'unknown' : verdicts.includes('invalid') ? 'invalid' : 'valid');
  switch (item.kind) {
    case 'uint': case 'nint': case 'bytes': case 'float': return 'valid';
    case 'text': return isUtf8(item.data) ? 'valid' : 'invalid';
    case 'chunked': return item.chunks.every((c) => c.major === item.major && (c.major === 2 || isUtf8(c.data))) ? 'valid' : 'invalid';
    case 'simple': return item.byte.length === 1 && item.byte[0]! >= 0xf4 && item.byte[0]! <= 0xf7 ? 'valid' : 'invalid';
    case 'tag': return 'invalid';
    case 'break': return 'unknown';
    case 'array': {
      if (depth + 1 > MAX_CBOR_DEPTH) return 'invalid';
      return all(item.items.map((i) => verdict(i, depth + 1)));
    }
    case 'map': {
      if (depth + 1 > MAX_CBOR_DEPTH) return 'invalid';
      if (item.dropLastValue && item.entries.length > 0) return 'unknown';
      return all(item.entries.flatMap(([k, v]) => [verdict(k, depth + 1), verdict(v, depth + 1)]));
    }
  }
}

function isUtf8(bytes: Uint8Array): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/** Text of any code points (controls, C1, astral), or short names and units close to the rules' edges. */
const anyText = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.string({ unit: fc.constantFrom('a', '\t', '\r', '\u007f', '\u009b', '\u2028', '😀', '\ud800'), maxLength: 4 }),
  fc.constantFrom('temp', 'a/b', 'bad name', '', '-x', 'x'.repeat(128), 'x'.repeat(129), '\n', 'Cel', '\u0085', 'a\u0000b', '°C', '%RH'),
);
const senmlValue = fc.oneof(
  fc.double(), fc.integer(), fc.constantFrom(Number.NaN, Infinity, -Infinity, 2 ** 53 + 2, 1e300, -1e300, -0, 2 ** 28, 1.7e9),
  anyText, fc.boolean(), fc.uint8Array({ maxLength: 4 }), fc.constant(null), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }),
  fc.array(fc.integer(), { maxLength: 2 }),
);
const senmlKey = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...Object.values(SENML_LABELS)) },
  { weight: 2, arbitrary: fc.constantFrom(...Object.keys(SENML_LABELS)) },
  { weight: 1, arbitrary: fc.constantFrom<string | number>(-7, 9, 23, 1.5, 'x_', 'extra', 'n_') },
);
/** Close to a real record (a name and one value of its field's type), then disturbed by random labels. */
const plausibleRecord = fc.tuple(
  fc.oneof(fc.constantFrom('temp', 'hum', 'a:b/c.d-e_f'), anyText),
  fc.oneof(
    fc.tuple(fc.constant(SENML_LABELS.v), fc.oneof(fc.double(), fc.integer())),
    fc.tuple(fc.constant(SENML_LABELS.vs), anyText),
    fc.tuple(fc.constant(SENML_LABELS.vb), fc.boolean()),
    fc.tuple(fc.constant(SENML_LABELS.vd), fc.uint8Array({ maxLength: 4 })),
    fc.tuple(fc.constant(SENML_LABELS.s), fc.double()),
    fc.tuple(fc.constantFrom(SENML_LABELS.v, SENML_LABELS.vs, SENML_LABELS.vb, SENML_LABELS.vd, SENML_LABELS.s), senmlValue),
  ),
  fc.option(fc.tuple(fc.constantFrom(SENML_LABELS.u, SENML_LABELS.bu), anyText), { nil: undefined }),
  fc.oneof({ weight: 3, arbitrary: fc.constant([]) }, { weight: 1, arbitrary: fc.array(fc.tuple(senmlKey, senmlValue), { maxLength: 2 }) }),
).map(([name, [label, value], unit, extra]) =>
  new Map<string | number, unknown>([[SENML_LABELS.n, name], [label, value], ...(unit ? [unit] : []), ...extra]));
const senmlRecordish = fc.oneof(
  { weight: 5, arbitrary: plausibleRecord },
  { weight: 4, arbitrary: fc.array(fc.tuple(senmlKey, senmlValue), { maxLength: 6 }).map((entries) => new Map<string | number, unknown>(entries)) },
  { weight: 1, arbitrary: fc.dictionary(fc.constantFrom('n', 'v', 'bn', 't', 'vs', 'zz'), senmlValue, { maxKeys: 4 }) },
  { weight: 1, arbitrary: senmlValue },
);
/** Mostly arrays of records; sometimes something else where a pack should be. */
export const packish = fc.oneof(
  { weight: 5, arbitrary: fc.array(plausibleRecord, { minLength: 1, maxLength: 3 }) },
  { weight: 4, arbitrary: fc.array(senmlRecordish, { maxLength: 6 }) },
  { weight: 1, arbitrary: senmlValue },
);

/** Records made only of what the hub's encoder can write, so they can travel inside a TELEMETRY. */
const encodableRecord = fc.array(
  fc.tuple(senmlKey, fc.oneof(fc.double(), fc.integer(), fc.string({ maxLength: 16 }), fc.boolean(), fc.uint8Array({ maxLength: 4 }), fc.constant(null))),
  { maxLength: 6 },
).map((entries) => new Map<string | number, unknown>(entries));

const anyBytes = fc.uint8Array({ maxLength: 256 });
const treeBytes = cborItem().map(writeCbor);

export const PROTOCOL_PROPERTIES: NamedProperty[] = [
  {
    name: 'decodeDeviceFrame: random bytes never throw; refusals are catalog frame errors with a close code',
    property: () => fc.property(anyBytes, checkDeviceFrame),
  },
  {
    name: 'decodeDeviceFrame: generated and mutated CBOR never throws; accepted TELEMETRY packs resolve safely',
    property: () => fc.property(mutatedCbor(treeBytes), checkDeviceFrame),
  },
  {
    name: 'decodeDeviceFrame: a message envelope around generated CBOR, mutated',
    property: () => fc.property(
      mutatedCbor(fc.tuple(fc.constantFrom(0, 1, 2, 3, 4, 5, 6, 7, 255), fc.array(cborItem(6), { maxLength: 4 })).map(([type, rest]) =>
        writeCbor({ kind: 'array', indefinite: false, items: [{ kind: 'uint', value: BigInt(type), width: 'shortest' }, ...rest] }))),
      checkDeviceFrame,
    ),
  },
  {
    name: 'decodeDeviceFrame: TELEMETRY of arbitrary SenML-like records decodes, and its pack resolves or is refused with ACK 2/3',
    property: () => fc.property(fc.nat({ max: SEQ_MODULUS - 1 }), fc.array(encodableRecord, { minLength: 1, maxLength: 5 }), (seq, records) => {
      const bytes = encodeTelemetry(seq, records);
      const result = decodeDeviceFrame(bytes);
      if (result instanceof PulsewireError || result.type !== 1 || result.seq !== seq) throw new Error(`a valid TELEMETRY was not decoded as one: ${String(result)}`);
      checkDeviceFrame(bytes);
    }),
  },
  {
    name: 'decodeDeviceBatch and decodeHubFrame: never throw, refusals are typed',
    property: () => fc.property(fc.oneof(anyBytes, mutatedCbor(treeBytes)), (bytes) => {
      for (const [what, decode] of [['decodeDeviceBatch', decodeDeviceBatch], ['decodeHubFrame', decodeHubFrame]] as const) {
        const result = noThrow(what, () => decode(bytes));
        if (result instanceof PulsewireError) expectRefusal(result, FRAME_ERRORS);
        else if (result instanceof Error) throw new Error(`${what}: an untyped error came back`);
      }
      const batch = decodeDeviceBatch(bytes);
      if (Array.isArray(batch)) for (const m of batch) if (m.type === 1) checkPack(m.pack);
    }),
  },
  {
    name: 'CBOR pre-scan: accepts exactly the well-formed, tag-free items within 16 levels (RFC 8949 oracle), and cbor-x decodes all it accepts',
    property: () => fc.property(cborItem(), (item) => {
      const bytes = writeCbor(item);
      const scan = noThrow('inspectCbor', () => inspectCbor(bytes));
      const expected = verdict(item);
      if (scan.error) {
        if (!CBOR_ERRORS.has(scan.error.code)) throw new Error(`scan returned ${scan.error.code}`);
        if (expected === 'valid') throw new Error(`a valid item was refused: ${scan.error.message} (${Buffer.from(bytes).toString('hex')})`);
        return;
      }
      if (expected === 'invalid') throw new Error(`an invalid item was accepted (${Buffer.from(bytes).toString('hex')})`);
      const decoded = decodeCbor(bytes);
      if (decoded instanceof PulsewireError) throw new Error(`accepted by the scan, refused by cbor-x: ${decoded.message}`);
    }),
  },
  {
    name: 'CBOR pre-scan: mutated bytes never throw; whatever it accepts cbor-x decodes',
    property: () => fc.property(fc.oneof(anyBytes, mutatedCbor(treeBytes)), (bytes) => {
      const scan = noThrow('inspectCbor', () => inspectCbor(bytes));
      if (scan.error) {
        if (!CBOR_ERRORS.has(scan.error.code)) throw new Error(`scan returned ${scan.error.code}`);
        return;
      }
      const decoded = noThrow('decodeCbor', () => decodeCbor(bytes));
      if (decoded instanceof PulsewireError) throw new Error(`accepted by the scan, refused by cbor-x: ${decoded.message}`);
    }),
  },
  {
    name: 'CBOR pre-scan: nesting of thousands of levels is refused as too deep, without recursion',
    property: () => fc.property(deepNesting, (bytes) => {
      const result = noThrow('decodeDeviceFrame', () => decodeDeviceFrame(bytes, { maxBytes: 1 << 20 }));
      const depth = bytes[0] === 0xa1 ? (bytes.length - 1) / 2 : bytes[0] === 0x9f ? (bytes.length - 1) / 2 : bytes.length - 1;
      if (depth > MAX_CBOR_DEPTH) {
        if (!(result instanceof PulsewireError && result.code === 'PW_ERR_CBOR_TOO_DEEP')) throw new Error(`depth ${depth} not refused as too deep`);
      } else if (result instanceof PulsewireError && result.code === 'PW_ERR_CBOR_TOO_DEEP') throw new Error(`depth ${depth} refused`);
    }),
  },
  {
    name: 'resolvePack: any value never throws; refusals are ACK 2/3; accepted readings hold storage\'s invariants',
    property: () => fc.property(packish, checkPack),
  },
  {
    name: 'resolvePack: packs that went through CBOR and back (exact keys, bigints, byte strings) behave the same',
    property: () => fc.property(fc.array(encodableRecord, { minLength: 1, maxLength: 5 }), (records) => {
      const decoded = decodeCbor(encodeCbor(records));
      if (decoded instanceof PulsewireError) throw new Error(`the hub's own encoding was refused: ${decoded.message}`);
      checkPack(decoded.value);
    }),
  },
];
