import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeTelemetry } from '../../src/protocol/encode.js';
import { TestDevice } from '../support/device-client.js';
import { startHub, type TestHub } from '../support/hub.js';
import { LiveClient, SseClient, type Frame } from './live-client.js';

const CONFLATE = 64 * 1024;
const MAX_BUFFERED = 2 * 1024 * 1024;
const STALL_MS = 3000;
const SERIES = 400;
const PER_MESSAGE = 100;
// Long names make each reading ~200 bytes of JSON, so the kernel's socket buffers fill in a second or two.
const name = (k: number) => `vibration/axis-x/${'p'.repeat(60)}/s${k}`;

/**
 * Sends TELEMETRY at `perSecond` messages (a 32-message window at most in
 * flight) for `ms`; returns the ACK latencies. Paced, not saturating, so
 * latency measures the hub's responsiveness rather than queueing in the window.
 */
async function pump(device: TestDevice, ms: number, opts: { perSecond?: number; onAck?: () => void; sentLog?: Map<number, number>; stop?: () => boolean } = {}): Promise<number[]> {
  const perSecond = opts.perSecond ?? 100;
  const latencies: number[] = [];
  const inFlight = new Map<number, number>();
  const t0 = Date.now() / 1000;
  const start = performance.now();
  let seq = 0;
  let sending = true;
  const acks = (async () => {
    while (sending || inFlight.size > 0) {
      // Only wait for an ACK that is owed, or the last wait would outlive the test.
      if (inFlight.size === 0) {
        await new Promise((r) => setTimeout(r, 2));
        continue;
      }
      const ack = await device.next();
      if (ack.type !== 2) continue;
      expect(ack.code ?? 0).toBe(0);
      latencies.push(performance.now() - inFlight.get(ack.seq)!);
      inFlight.delete(ack.seq);
      opts.onAck?.();
    }
  })();
  while (performance.now() - start < ms && !opts.stop?.()) {
    if (inFlight.size >= 32 || performance.now() < start + (seq * 1000) / perSecond) {
      await new Promise((r) => setTimeout(r, 2));
      continue;
    }
    const records = Array.from({ length: PER_MESSAGE }, (_, j) => ({ n: name((seq * PER_MESSAGE + j) % SERIES), v: seq, t: t0 + seq / 1000 }));
    inFlight.set(seq, performance.now());
    opts.sentLog?.set(seq, performance.now());
    device.send(encodeTelemetry(seq++, records));
  }
  sending = false;
  await acks;
  return latencies;
}

const p99 = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length * 0.99)]!;

describe('live stream backpressure', () => {
  let hub: TestHub;
  beforeAll(async () => {
    hub = await startHub(
      { PULSEWIRE_LIVE_CONFLATE_BYTES: String(CONFLATE), PULSEWIRE_LIVE_MAX_BUFFERED_BYTES: String(MAX_BUFFERED) },
      { live: { stallMs: STALL_MS } },
    );
  });
  afterAll(async () => { await hub?.close(); });

  it('a stalled reader is conflated with bounded buffers, then closed with 1013, and slows nobody else', async () => {
    const healthy = await LiveClient.connect(hub.baseUrl);
    await healthy.next((f) => f.type === 'snapshot');
    // Time from send to screen per reading: its value is the seq of the message that carried it.
    let phase = { device: 'bp-0', sentLog: new Map<number, number>(), delays: [] as number[] };
    healthy.socket.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as Frame;
      for (const r of frame.type === 'events' ? frame.readings ?? [] : []) {
        if (r.device === phase.device) phase.delays.push(performance.now() - phase.sentLog.get(r.v)!);
      }
    });
    const settle = async (count: number) => {
      for (let waited = 0; phase.delays.length < count && waited < 2000; waited += 20) await new Promise((r) => setTimeout(r, 20));
    };
    // Baseline on this machine, right now: the same load with nobody stalled.
    const first = await TestDevice.connect(hub.deviceUrl, { id: 'bp-0' });
    const baseAcks = await pump(first, 2000, { sentLog: phase.sentLog });
    await settle(baseAcks.length * PER_MESSAGE);
    const baseDelays = phase.delays;
    await first.close();

    const stalled = await LiveClient.connect(hub.baseUrl);
    await stalled.next((f) => f.type === 'snapshot');
    stalled.socket.pause();
    phase = { device: 'bp-1', sentLog: new Map(), delays: [] };
    let peakBuffered = 0;
    let sawConflating = false;
    const sample = setInterval(() => {
      const stats = hub.app.live.stats;
      peakBuffered = Math.max(peakBuffered, stats.maxBufferedBytes);
      sawConflating ||= stats.conflating > 0;
    }, 20);
    const device = await TestDevice.connect(hub.deviceUrl, { id: 'bp-1' });
    const latencies = await pump(device, STALL_MS + 2000, { sentLog: phase.sentLog });
    clearInterval(sample);
    await settle(latencies.length * PER_MESSAGE);

    expect(sawConflating).toBe(true);
    // Without conflation it would hold everything sent since the stall: tens of megabytes here.
    expect(peakBuffered).toBeLessThan(MAX_BUFFERED);
    // Closed once it stayed behind for STALL_MS (ticks go on without events, so this needs no more traffic).
    for (let waited = 0; hub.app.live.stats.connections > 1 && waited < STALL_MS + 3000; waited += 50) await new Promise((r) => setTimeout(r, 50));
    expect(hub.app.live.stats.connections).toBe(1);
    // Against the baseline, with slack for a shared machine: a hub held up by the stalled reader
    // (buffering everything for it, or blocking on it) shows seconds here, and far fewer ACKs.
    expect(latencies.length / (STALL_MS + 2000)).toBeGreaterThan((0.7 * baseAcks.length) / 2000);
    expect(p99(latencies)).toBeLessThan(Math.max(1000, 3 * p99(baseAcks)));
    expect(phase.delays.length).toBe(latencies.length * PER_MESSAGE);
    expect(p99(phase.delays)).toBeLessThan(Math.max(1500, 3 * p99(baseDelays)));

    stalled.socket.resume();
    const closed = await stalled.closed;
    expect(closed.code).toBe(1013);
    expect(closed.reason).toMatch(/too slow/);
    const metrics = (await hub.api('GET', '/metrics')).body as string;
    expect(metrics).toMatch(/^pulsewire_live_closed_too_slow_total 1$/m);
    expect(metrics).toMatch(/^pulsewire_live_connections 1$/m);
    await device.close();
    await healthy.close();
  }, 30_000);

  it('a reader that pauses and resumes gets conflated frames: one reading per series, flagged', async () => {
    const slow = await LiveClient.connect(hub.baseUrl);
    await slow.next((f) => f.type === 'snapshot');
    slow.socket.pause();
    const device = await TestDevice.connect(hub.deviceUrl, { id: 'bp-2' });
    let resumedAt: number | undefined;
    await pump(device, 15_000, {
      onAck: () => {
        if (resumedAt === undefined && hub.app.live.stats.conflating > 0) {
          resumedAt = Date.now() + 500;
          setTimeout(() => slow.socket.resume(), 500);
        }
      },
      stop: () => resumedAt !== undefined && Date.now() > resumedAt + 1000,
    });
    expect(resumedAt).toBeDefined();
    const conflated = await slow.next((f) => f.type === 'events' && f.conflated === true);
    const keys = conflated.readings.map((r: Frame) => `${r.device}/${r.name}`);
    expect(new Set(keys).size).toBe(keys.length);
    expect(keys.length).toBeLessThanOrEqual(SERIES);
    // Each series' value in a conflated frame is its newest: nothing newer came before it.
    const before = slow.seen.filter((f) => f.type === 'events' && f.seq! < conflated.seq!).flatMap((f) => f.readings ?? []);
    for (const r of conflated.readings) {
      const older = before.filter((b: Frame) => b.name === r.name && b.device === r.device);
      for (const b of older) expect(b.t).toBeLessThanOrEqual(r.t);
    }
    await device.close();
    await slow.close();
  }, 30_000);

  it('an SSE reader that stops reading is held to the same bounds and ends with PW_ERR_LIVE_TOO_SLOW', async () => {
    const sse = (await SseClient.open(hub.baseUrl)) as SseClient;
    await sse.next((f) => f.type === 'snapshot');
    sse.response.pause();
    const closedBefore = hub.app.live.stats.closedTooSlow;
    let peakBuffered = 0;
    const sample = setInterval(() => { peakBuffered = Math.max(peakBuffered, hub.app.live.stats.maxBufferedBytes); }, 20);
    const device = await TestDevice.connect(hub.deviceUrl, { id: 'bp-sse' });
    await pump(device, 15_000, { stop: () => hub.app.live.stats.closedTooSlow > closedBefore });
    clearInterval(sample);
    expect(hub.app.live.stats.closedTooSlow).toBe(closedBefore + 1);
    expect(peakBuffered).toBeLessThan(MAX_BUFFERED);
    sse.response.resume();
    const last = await sse.next((f) => f.type === 'error');
    expect(last.code).toBe('PW_ERR_LIVE_TOO_SLOW');
    await device.close();
  }, 30_000);
});
