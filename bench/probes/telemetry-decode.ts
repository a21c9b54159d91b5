/**
 * Probe (not a scenario; prints JSON): CPU per TELEMETRY message of turning
 * a frame into readings, both ways the hub has: the pack read straight from
 * the frame's bytes (decodeTelemetryFrame, protocol/senml-cbor.ts) and the
 * frame decoded by cbor-x into Maps first (decodeDeviceFrame), each followed
 * by resolvePack. Rounds alternate within one process, so a busy machine
 * weighs on both alike (CPU time, not wall time). What each allocates is for
 * the hub's allocation profile (ingest-cpu.ts --heap-prof).
 *
 *   tsx bench/probes/telemetry-decode.ts [--records N] [--messages N] [--rounds N]
 */
import { parseArgs } from 'node:util';
import { decodeDeviceFrame, decodeTelemetryFrame } from '../../src/protocol/codec.js';
import { encodeTelemetry } from '../../src/protocol/encode.js';
import { resolvePack } from '../../src/protocol/senml.js';

const { values } = parseArgs({ options: { records: { type: 'string' }, messages: { type: 'string' }, rounds: { type: 'string' } } });
const records = Number(values.records ?? 10);
const messages = Number(values.messages ?? 200_000);
const rounds = Number(values.rounds ?? 5);

const nowUs = Date.now() * 1000;
// The bench driver's shape (bench/lib/frames.ts): a name, a unit on the first record, a value and a time.
const pack = Array.from({ length: records }, (_, i) =>
  new Map<number, unknown>([[0, `sensor${i}`], ...(i === 0 ? [[1, 'Cel'] as [number, unknown]] : []), [2, 20.5 + i], [6, Math.floor(nowUs / 1e6)]]));
const frame = Buffer.from(encodeTelemetry(123_456, pack));
const opts = { nowUs };

function cpuMicros(decode: (bytes: Buffer) => unknown): number {
  const start = process.cpuUsage();
  for (let i = 0; i < messages; i++) {
    const message = decode(frame) as { pack: unknown };
    resolvePack(message.pack, opts);
  }
  const used = process.cpuUsage(start);
  return (used.user + used.system) / messages;
}

const fromBytes: number[] = [];
const throughCborX: number[] = [];
for (let r = 0; r < rounds; r++) {
  fromBytes.push(cpuMicros((bytes) => decodeTelemetryFrame(bytes)));
  throughCborX.push(cpuMicros((bytes) => decodeDeviceFrame(bytes)));
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(JSON.stringify({
  records, messages, rounds,
  cpuMicrosPerMessage: { fromBytes: +median(fromBytes).toFixed(2), throughCborX: +median(throughCborX).toFixed(2) },
  runs: { fromBytes: fromBytes.map((x) => +x.toFixed(2)), throughCborX: throughCborX.map((x) => +x.toFixed(2)) },
}));
