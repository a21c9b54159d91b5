/**
 * The load generator, run as its own process (pinned to the load core).
 *
 * A lean purpose-built driver rather than device-sim: the simulator refills a
 * device's window only on its shared 100 ms tick and caps a device at 100
 * messages per second, and it spends CPU on signal profiles and latency
 * histograms. To find the most the hub sustains the driver is closed-loop
 * instead: each device keeps `window` TELEMETRY messages in flight and sends
 * the next one the moment an ACK arrives ("saturate"), or sends at a fixed
 * fleet-wide rate ("rate", for the outage scenario). It encodes with the
 * hub's own protocol module (once, as a template; see frames.ts), so the
 * bytes are what real devices send.
 *
 * Every message gets bt = the device's own millisecond clock, one step per
 * message, so no two readings share a series and timestamp (InfluxDB would
 * store them once and the loss count would be wrong).
 */
import WebSocket from 'ws';
import { AckCode, MAX_IN_FLIGHT, SEQ_MODULUS, SUBPROTOCOL, decodeHubFrame } from '../../src/protocol/index.js';
import { deriveEnrollmentSecret } from '../../src/registry/secrets.js';
import { checkTemplate, FIRST_SEQ, FrameTemplate } from './frames.js';
import { latencyFigures, type LatencyFigures } from './latency-figures.js';
import { serve } from './ipc.js';

export type ConnectArgs = { url: string; devices: number; prefix: string; enrollmentKey?: string; concurrency?: number };
export type ConnectResult = { connected: number; seconds: number };

export type RunArgs = {
  mode: 'saturate' | 'rate';
  /** Records per message. */
  batch: number;
  seconds: number;
  /** Reading names are `${names}0` .. `${names}${batch-1}`; one prefix per phase keeps phases countable apart. */
  names: string;
  /** Fleet-wide messages per second (mode "rate"). */
  messagesPerSecond?: number;
  /** Messages in flight per device, at most the protocol's 32. */
  window?: number;
  /** How long to wait for outstanding ACKs after the load stops. */
  drainMs?: number;
  /** Record each message's send-to-ACK time, from this many ms after the start on (the warm-up is left out). */
  latencyAfterMs?: number;
};

/** Send-to-ACK times of the messages sent after the warm-up, ms. */
export type { LatencyFigures };

/** One second of the run, by the driver's clock (epoch ms). */
export type Tick = { at: number; sent: number; acked: number; nonZero: number };

export type RunResult = {
  startedAt: number;
  stoppedAt: number;
  /** Load window, seconds (sending on). */
  seconds: number;
  sent: number;
  readingsSent: number;
  /** ACKs by code, after the drain. */
  acks: Record<string, number>;
  /** ACK 0 received while the load was on. */
  ackedInWindow: number;
  readingsAcked: number;
  /** Messages never acknowledged within drainMs. */
  unacknowledged: number;
  /** Times a due message found every window full (mode "rate"). */
  blocked: number;
  socketErrors: number;
  /** The driver's own CPU seconds during the run; near `seconds` means the load generator was the limit. */
  cpuSeconds: number;
  timeline: Tick[];
  latencyMs?: LatencyFigures;
};

/** sentAt: performance.now() of each message in flight, by seq mod 64 (the window is at most 32). */
type Device = { id: string; ws: WebSocket; seq: number; timeMs: number; inFlight: number; sentAt: Float64Array };

const devices: Device[] = [];
const randomValue = () => Math.random() * 100;
let phase: Phase | undefined;
let socketErrors = 0;

class Phase {
  sending = true;
  sent = 0;
  acks: Record<string, number> = {};
  acked = 0;
  nonZero = 0;
  blocked = 0;
  /** performance.now() from which latencies count (Infinity: not recorded). */
  latencyFrom = Infinity;
  latencies: number[] = [];
  template: FrameTemplate;
  constructor(readonly args: RunArgs, readonly window: number) {
    this.template = new FrameTemplate(Array.from({ length: args.batch }, (_, i) => `${args.names}${i}`));
    checkTemplate(this.template);
  }

  send(d: Device): void {
    d.timeMs += 1;
    d.sentAt[d.seq & 63] = performance.now();
    d.ws.send(this.template.frame(d.seq, d.timeMs / 1000, randomValue));
    d.seq = d.seq + 1 === SEQ_MODULUS ? FIRST_SEQ : d.seq + 1;
    d.inFlight++;
    this.sent++;
  }

  onAck(d: Device, seq: number, code: number): void {
    d.inFlight--;
    const sentAt = d.sentAt[seq & 63]!;
    if (sentAt >= this.latencyFrom) this.latencies.push(performance.now() - sentAt);
    this.acks[code] = (this.acks[code] ?? 0) + 1;
    if (code === AckCode.ACCEPTED) this.acked++;
    else this.nonZero++;
    if (this.sending && this.args.mode === 'saturate' && d.ws.readyState === WebSocket.OPEN) this.send(d);
  }
}

function onMessage(d: Device, data: Buffer): void {
  const msg = decodeHubFrame(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  if (msg instanceof Error || msg.type !== 2) return;
  if (phase) phase.onAck(d, msg.seq, msg.code ?? AckCode.ACCEPTED);
  else d.inFlight = Math.max(0, d.inFlight - 1);
}

function open(url: string, id: string, enrollmentKey: string | undefined): Promise<Device> {
  const headers: Record<string, string> = {};
  if (enrollmentKey) headers.authorization = `Basic ${Buffer.from(`${id}:${deriveEnrollmentSecret(enrollmentKey, id)}`).toString('base64')}`;
  const ws = new WebSocket(url, SUBPROTOCOL, { headers, perMessageDeflate: false, handshakeTimeout: 15_000 });
  ws.binaryType = 'nodebuffer';
  const device: Device = { id, ws, seq: FIRST_SEQ, timeMs: Date.now() - 60_000, inFlight: 0, sentAt: new Float64Array(64) };
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(device));
    ws.once('error', reject);
    ws.on('error', () => { socketErrors++; });
    ws.on('message', (data) => onMessage(device, data as Buffer));
  });
}

async function connect(args: ConnectArgs): Promise<ConnectResult> {
  const started = Date.now();
  const ids = Array.from({ length: args.devices }, (_, i) => `${args.prefix}${String(i).padStart(5, '0')}`);
  let next = 0;
  const worker = async () => {
    while (next < ids.length) devices.push(await open(args.url, ids[next++]!, args.enrollmentKey));
  };
  await Promise.all(Array.from({ length: args.concurrency ?? 50 }, worker));
  return { connected: devices.length, seconds: (Date.now() - started) / 1000 };
}

async function run(args: RunArgs): Promise<RunResult> {
  const window = Math.min(args.window ?? MAX_IN_FLIGHT, MAX_IN_FLIGHT);
  const p = new Phase(args, window);
  if (args.latencyAfterMs !== undefined) p.latencyFrom = performance.now() + args.latencyAfterMs;
  phase = p;
  const cpuStart = process.cpuUsage();
  const startedAt = Date.now();
  const timeline: Tick[] = [];
  const ticker = setInterval(() => timeline.push({ at: Date.now(), sent: p.sent, acked: p.acked, nonZero: p.nonZero }), 1000);
  let pacer: NodeJS.Timeout | undefined;
  if (args.mode === 'saturate') {
    for (const d of devices) while (d.inFlight < window) p.send(d);
  } else {
    const rate = args.messagesPerSecond ?? 1000;
    let cursor = 0;
    pacer = setInterval(() => {
      const due = Math.floor((rate * (Date.now() - startedAt)) / 1000);
      while (p.sent < due) {
        let tries = 0;
        while (tries < devices.length && devices[cursor]!.inFlight >= window) { cursor = (cursor + 1) % devices.length; tries++; }
        if (tries === devices.length) { p.blocked++; break; }
        p.send(devices[cursor]!);
        cursor = (cursor + 1) % devices.length;
      }
    }, 10);
  }
  await new Promise((resolve) => setTimeout(resolve, args.seconds * 1000));
  p.sending = false;
  clearInterval(pacer);
  const stoppedAt = Date.now();
  const ackedInWindow = p.acked;
  const drainUntil = Date.now() + (args.drainMs ?? 60_000);
  while (Date.now() < drainUntil && devices.some((d) => d.inFlight > 0)) await new Promise((r) => setTimeout(r, 20));
  clearInterval(ticker);
  timeline.push({ at: Date.now(), sent: p.sent, acked: p.acked, nonZero: p.nonZero });
  const cpu = process.cpuUsage(cpuStart);
  phase = undefined;
  return {
    startedAt, stoppedAt,
    seconds: (stoppedAt - startedAt) / 1000,
    sent: p.sent,
    readingsSent: p.sent * args.batch,
    acks: p.acks,
    ackedInWindow,
    readingsAcked: p.acked * args.batch,
    unacknowledged: devices.reduce((n, d) => n + d.inFlight, 0),
    blocked: p.blocked,
    socketErrors,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    timeline,
    ...(args.latencyAfterMs !== undefined ? { latencyMs: latencyFigures(p.latencies) } : {}),
  };
}

async function close(): Promise<{ closed: number }> {
  await Promise.all(devices.map((d) => new Promise<void>((resolve) => {
    if (d.ws.readyState === WebSocket.CLOSED) return resolve();
    d.ws.once('close', () => resolve());
    d.ws.close(1000, 'bench done');
    setTimeout(() => { d.ws.terminate(); resolve(); }, 3000).unref();
  })));
  const closed = devices.length;
  devices.length = 0;
  return { closed };
}

serve({ connect, run, close });
