/**
 * The client side of the `dashboard` scenario, as its own process (pinned
 * to the load core): either a fleet sending TELEMETRY at a fixed rate and
 * timing its ACKs, or a set of operator dashboards on /v1/live timing each
 * reading from its reading time (the device's clock at send, same host) to
 * its arrival, or a dashboard that stops reading. One process per role, so a
 * busy dashboard event loop does not delay the fleet's ACK timing.
 */
import WebSocket from 'ws';
import { encodeTelemetry, SUBPROTOCOL } from '../../src/protocol/index.js';
import { deriveEnrollmentSecret } from '../../src/registry/secrets.js';
import { serve } from '../lib/ipc.js';
import { until } from '../lib/proc.js';

export type Percentiles = { count: number; p50: number; p99: number; max: number };

function percentiles(values: number[]): Percentiles {
  const s = [...values].sort((a, b) => a - b);
  const q = (p: number) => (s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]!);
  return { count: s.length, p50: q(0.5), p99: q(0.99), max: s.at(-1) ?? NaN };
}

const devices: { ws: WebSocket; seq: number; sentAt: Map<number, number> }[] = [];
let ackLatencies: number[] = [];

/** Adds `count` devices on `url` (called once per node in `cluster`, each with its own id prefix). */
async function connectFleet(args: { url: string; count: number; enrollmentKey: string; prefix?: string }): Promise<number> {
  for (let i = 0; i < args.count; i++) {
    const id = `${args.prefix ?? 'dash-dev-'}${i}`;
    const auth = Buffer.from(`${id}:${deriveEnrollmentSecret(args.enrollmentKey, id)}`).toString('base64');
    const ws = new WebSocket(args.url, [SUBPROTOCOL], { headers: { authorization: `Basic ${auth}` } });
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
    const device = { ws, seq: 0, sentAt: new Map<number, number>() };
    // ACK is [2, seq] or [2, seq, code]: the seq is the second item; decode by hand to stay cheap.
    ws.on('message', (data: Buffer) => {
      const seq = readAckSeq(data);
      const at = device.sentAt.get(seq);
      if (at === undefined) return;
      device.sentAt.delete(seq);
      ackLatencies.push(performance.now() - at);
    });
    devices.push(device);
  }
  return devices.length;
}

function readAckSeq(b: Buffer): number {
  // 0x82/0x83 array, 0x02 type, then the seq as a CBOR unsigned integer.
  const head = b[2]!;
  if (head < 24) return head;
  if (head === 24) return b[3]!;
  if (head === 25) return b.readUInt16BE(3);
  if (head === 26) return b.readUInt32BE(3);
  return -1;
}

/** Sends `readingsPerSecond` in messages of `batch` records, spread over the fleet, every 10 ms. */
async function load(args: { seconds: number; readingsPerSecond: number; batch: number }): Promise<{ scheduled: number; sent: number; acked: number; ack: Percentiles; unacked: number }> {
  ackLatencies = [];
  const messagesPerSecond = args.readingsPerSecond / args.batch;
  const start = performance.now();
  let sent = 0;
  let scheduled = 0;
  let next = 0;
  while (performance.now() - start < args.seconds * 1000) {
    const due = Math.floor(((performance.now() - start) / 1000) * messagesPerSecond);
    for (; scheduled < due; scheduled++) {
      const device = devices[next++ % devices.length]!;
      // A full window means the hub is behind: the message is skipped, and shows as sent < scheduled.
      if (device.sentAt.size >= 32) continue;
      sent++;
      const t = Date.now() / 1000;
      const records = Array.from({ length: args.batch }, (_, j) => ({ n: `r${j}`, v: scheduled, t }));
      device.sentAt.set(device.seq, performance.now());
      device.ws.send(encodeTelemetry(device.seq++, records));
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  await new Promise((r) => setTimeout(r, 2000));
  const unacked = devices.reduce((n, d) => n + d.sentAt.size, 0);
  for (const d of devices) d.sentAt.clear();
  return { scheduled, sent, acked: ackLatencies.length, ack: percentiles(ackLatencies), unacked };
}

/** `byGroup`: latencies by the device-id prefix a reading's device starts with (`cluster`: the node the device is on). */
type Dashboard = { ws: WebSocket; latencies: number[]; byGroup: Map<string, number[]>; frames: number; conflated: number; snapshots: number; closed?: { code: number; reason: string } };
const dashboards: Dashboard[] = [];

/**
 * `devices`: device-id patterns the dashboards subscribe to (the live stream's filter; `x-*` is a prefix), so a
 * scenario's saturating load on other devices is not streamed to them: a dashboard sent a whole hub's ingest
 * falls behind and the hub closes it with 1013 (the cluster run of 2026-12-08 lost its dashboard that way).
 */
async function openDashboards(args: { url: string; token: string; count: number; stall: boolean; groups?: string[]; devices?: string[] }): Promise<number> {
  const groups = args.groups ?? [];
  for (let i = 0; i < args.count; i++) {
    const ws = new WebSocket(args.url, { headers: { authorization: `Bearer ${args.token}` } });
    const d: Dashboard = { ws, latencies: [], byGroup: new Map(groups.map((g) => [g, []])), frames: 0, conflated: 0, snapshots: 0 };
    ws.on('message', (data: Buffer) => {
      const frame = JSON.parse(data.toString()) as { type: string; conflated?: boolean; readings?: { device: string; t: number }[] };
      if (frame.type === 'snapshot') d.snapshots++;
      if (frame.type !== 'events') return;
      d.frames++;
      if (frame.conflated) d.conflated++;
      const now = Date.now();
      for (const r of frame.readings ?? []) {
        d.latencies.push(now - r.t);
        const group = groups.find((g) => r.device.startsWith(g));
        if (group !== undefined) d.byGroup.get(group)!.push(now - r.t);
      }
    });
    ws.on('close', (code, reason) => { d.closed = { code, reason: reason.toString() }; });
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
    if (args.devices) {
      // The snapshot after the subscribe says the filter is in place (the first one answers the connect).
      if (!(await until(() => d.snapshots >= 1, 10_000, 20))) throw new Error('dashboard: no snapshot within 10 s of connecting');
      ws.send(JSON.stringify({ type: 'subscribe', devices: args.devices }));
      if (!(await until(() => d.snapshots >= 2, 10_000, 20))) throw new Error('dashboard: no snapshot within 10 s of subscribing');
    }
    if (args.stall) ws.pause();
    dashboards.push(d);
  }
  return dashboards.length;
}

/** Latencies since the last call, over every open dashboard (and by device group, when groups were given). */
function dashboardStats(): { latency: Percentiles; groups: Record<string, Percentiles>; frames: number; conflated: number; closed: Dashboard['closed'][] } {
  const all = dashboards.flatMap((d) => d.latencies);
  const names = [...new Set(dashboards.flatMap((d) => [...d.byGroup.keys()]))];
  const groups = Object.fromEntries(names.map((g) => [g, percentiles(dashboards.flatMap((d) => d.byGroup.get(g) ?? []))]));
  const out = { latency: percentiles(all), groups, frames: dashboards.reduce((n, d) => n + d.frames, 0), conflated: dashboards.reduce((n, d) => n + d.conflated, 0), closed: dashboards.map((d) => d.closed) };
  for (const d of dashboards) { d.latencies = []; d.frames = 0; d.conflated = 0; for (const g of d.byGroup.keys()) d.byGroup.set(g, []); }
  return out;
}

/** The stalled dashboard reads again: what did it get, and was it closed? */
async function resume(args: { waitMs: number }) {
  for (const d of dashboards) d.ws.resume();
  await new Promise((r) => setTimeout(r, args.waitMs));
  return dashboardStats();
}

/** Closes every dashboard of this process (the stalled one, after its round). */
async function closeAll() {
  for (const d of dashboards) d.ws.terminate();
  return dashboards.splice(0).length;
}

serve({ connectFleet, load, openDashboards, dashboardStats, resume, closeAll });
