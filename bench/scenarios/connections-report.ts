/** Tables and the BENCHMARKS.md section of the connections scenario. */
import { fmt, sectionMarkdown, type Table, targetsTable } from '../lib/report.js';
import type { ConnectionsResult } from './connections.js';

const kib = (b: number) => fmt(b / 1024, 1);
const mib = (b: number) => fmt(b / 2 ** 20, 0);

/** How the figures were taken: the section's closing paragraph. */
export const CONNECTIONS_NOTES = [
  'How: for each step a fresh hub (built dist, own process, managed influxd, PULSEWIRE_PING_INTERVAL_MS as given) and then a',
  'fresh bare `ws` server (bench/servers/bare-ws.ts: same loopback port setup and path, one ping sweep per interval, ACKs',
  'each TELEMETRY, nothing else) each hold the same device-sim fleet (bench/lib/fleet-worker.ts, own process, ramp 2,000/s,',
  'one message of 4 records per device per 10 s, no reconnects). RSS is VmRSS from /proc/PID/status: "idle" is the median',
  'of 3 samples before any device connects, "held" the median of samples every 0.5 s after a settle period; KiB/conn =',
  '(held - idle) / devices held, so it includes everything a device costs the process (socket, session, registry entry,',
  'runtime, lmdb pages touched), not only the socket. No forced GC (not possible from outside): RSS includes garbage not',
  'yet collected, for both processes alike. The split: RssAnon and RssFile from /proc/PID/status, the JS heap and external',
  'memory from the process itself (the hub\'s /metrics, the bare server\'s process.memoryUsage()), 3 samples each, idle and',
  'held, after the CPU window; "after full GC": the same once more right after HeapProfiler.collectGarbage (the hub\'s inspector',
  'on a loopback port, the bare server\'s own inspector session) and 1 s, idle and held, so the difference is what the',
  'connections keep alive. CPU % is utime+stime over the measuring window (two ping sweeps and the',
  'telemetry), peak the highest 0.5 s bin. Loss is from device-sim\'s summary (sent = stored by ACK, none unACKed).',
  '"Simulator\'s longest stall": the longest event-loop delay of the device-sim processes while they held the fleet; past',
  'the ping interval a server drops the stalled simulator\'s devices (a failure of the load generator, not of the server).',
  'A step over one process\'s cap (issue 17) is held by a hub of workers (`PULSEWIRE_WORKERS`, the fewest that hold it, or',
  '`--workers N`): the primary process, its workers (node:cluster hands each accepted connection to one), and the',
  'nats-server and influxd the primary runs. Its RSS and CPU are summed over the primary and the workers (their JS heap from',
  'the hub\'s /metrics, which adds up the workers\'; the primary\'s heap is then in "other native"; the full GC goes to every',
  'process through its inspector); nats-server and influxd are shown apart (one process has no nats-server). The fleet runs',
  'in several device-sim processes (bench/lib/fleet-group.ts: split as `device-sim --processes` splits it, each device on',
  'the loopback source address device-sim gives it, 127.0.0.1 for the first 25,000, 127.0.0.2 for the next: one address has',
  'only about 28,000 ephemeral ports), and the bare ws baseline runs as as many processes as the hub has workers, each on its',
  'own port with its part of the fleet, so both sides hold the same number of sockets per process. Nothing is pinned in',
  'such a step: the hub of workers is there to use both cores, which it shares with the fleet processes. Such a step pings',
  'every 25 s (the hub\'s default) and ramps at 1,000/s: at 50,000 the three simulator processes, sharing two cores with the',
  'hub\'s six, stalled for up to 9.4 s (measured against bare ws, 2026-12-07), so at 5 s both servers dropped the stalled',
  'simulator\'s devices, and 2,000/s only made handshakes time out and retry.',
];

export function connectionsTables(r: ConnectionsResult): Table[] {
  const o = r.options;
  const workerSteps = r.steps.filter((s) => (s.workers ?? 1) > 1);
  const stall = (ms: number | undefined) => (ms === undefined ? '-' : fmt(ms / 1000, 1));
  const processes = (s: ConnectionsResult['steps'][number]) => ((s.workers ?? 1) > 1 ? `primary + ${s.workers} workers` : '1');
  const side = (s: ConnectionsResult['steps'][number]) => ['influxd', 'nats-server']
    .map((name) => { const x = s.hub.side?.[name]; return x ? `${mib(x.rssIdleBytes)} -> ${mib(x.rssHeldBytes)}` : '-'; }).join(', ');
  return [
    {
      title: `Idle devices held: ping every ${o.pingIntervalMs / 1000} s (a hub of workers: ${(o.workersPingIntervalMs ?? o.pingIntervalMs) / 1000} s), ${o.rate} TELEMETRY/s per device; RSS after ${o.settleS} s settle (median over ${o.measureS} s), CPU over ${o.measureS} s`,
      head: ['devices', 'hub processes (bare ws)', 'ping s / ramp per s', 'simulator\'s longest stall s (hub / bare)', 'hub held', 'hub RSS idle -> held (MiB)', 'hub KiB/conn', 'bare ws KiB/conn', 'hub / bare', 'influxd, nats-server RSS idle -> held (MiB)', 'hub CPU % (peak 0.5 s)', 'bare CPU % (peak 0.5 s)', 'hub: connect s / failed handshakes (retried)', 'sent / stored / lost / unACKed'],
      rows: r.steps.map((s) => [
        fmt(s.devices), `${processes(s)} (${s.bare.processes ?? 1})`, `${fmt((s.pingIntervalMs ?? o.pingIntervalMs) / 1000)} / ${fmt(s.ramp ?? o.ramp)}`,
        `${stall(s.hub.sim.loopDelayMaxMs)} / ${stall(s.bare.sim.loopDelayMaxMs)}`, fmt(s.hub.connected), `${mib(s.hub.rssIdleBytes)} -> ${mib(s.hub.rssHeldBytes)}`, kib(s.hub.bytesPerConnection), kib(s.bare.bytesPerConnection),
        `${s.ratio.toFixed(2)} x`, side(s), `${fmt(s.hub.cpuPercent, 1)} (${fmt(s.hub.cpuPeakPercent, 0)})`, `${fmt(s.bare.cpuPercent, 1)} (${fmt(s.bare.cpuPeakPercent, 0)})`,
        `${fmt(s.hub.connectSeconds, 1)} / ${fmt(s.hub.sim.failedConnects ?? 0)}`,
        `${fmt(s.hub.sim.sent)} / ${fmt(s.hub.sim.stored)} / ${fmt(s.hub.lost)} / ${fmt(s.hub.sim.unacknowledged)}`,
      ]),
    },
    ...(workerSteps.length === 0 ? [] : [{
      title: 'Hub of workers: each process, RSS idle -> held (MiB) and open descriptors while held (its sockets, give or take a few files); bare ws processes alike',
      head: ['devices', 'process', 'RSS idle -> held (MiB)', 'descriptors held', 'KiB per descriptor over idle'],
      rows: workerSteps.flatMap((s) => ([['hub', s.hub], ['bare ws', s.bare]] as const).flatMap(([name, f]) => (f.perProcess ?? []).map((p, i) => [
        fmt(s.devices), name === 'hub' ? (i === 0 ? 'hub primary' : `hub worker ${i}`) : `bare ws ${i + 1}`,
        `${mib(p.rssIdleBytes)} -> ${mib(p.rssHeldBytes)}`, fmt(p.fds), p.fds > 100 ? kib((p.rssHeldBytes - p.rssIdleBytes) / p.fds) : '-',
      ]))),
    }]),
    {
      title: 'Where each connection\'s RSS goes (KiB per connection, held - idle, summed over a server\'s processes): anonymous = JS heap (reserved) + external (Buffers) + other native (libuv, sockets, malloc); file-backed = lmdb\'s map and code; then the same after a full GC (inspector) of the idle and the holding process',
      head: ['devices', 'process', 'RSS', 'anonymous', 'file-backed', 'heap used (reserved)', 'external', 'other native', 'after full GC: RSS', 'anonymous', 'heap used (reserved)'],
      rows: r.steps.filter((s) => s.hub.split && s.hub.afterGc).flatMap((s) => ([['hub', s.hub], ['bare ws', s.bare]] as const).map(([name, f]) => [
        fmt(s.devices), name, kib(f.bytesPerConnection), kib(f.split.anon), kib(f.split.file), `${kib(f.split.heapUsed)} (${kib(f.split.heapTotal)})`, kib(f.split.external), kib(f.split.otherNative),
        kib(f.afterGc.bytesPerConnection), kib(f.afterGc.split.anon), `${kib(f.afterGc.split.heapUsed)} (${kib(f.afterGc.split.heapTotal)})`,
      ])),
    },
    targetsTable(r.targets),
  ];
}

export function connectionsMarkdown(r: ConnectionsResult, command: string, jsonFile: string, notes: string[]): string {
  return sectionMarkdown({ scenario: 'connections', facts: r, lines: [`Cap: ${fmt(r.cap)} devices: ${r.capReason}.`], command, jsonFile, tables: connectionsTables(r), notes });
}
