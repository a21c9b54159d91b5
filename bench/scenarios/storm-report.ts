/** Tables and the BENCHMARKS.md section of the reconnect-storm scenario. */
import type { DownCounts, PhaseFigures, RestartResponsiveness } from '../lib/restart-probes.js';
import { fmt, ratio, sectionMarkdown, type Table, targetsTable } from '../lib/report.js';
import type { StormHubSide } from './storm-hub-side.js';
import type { StormResult, StormRun } from './storm.js';

/** How the figures were taken: the section's closing paragraph. */
export const STORM_NOTES = [
  'How: device-sim (bench/lib/fleet-worker.ts, own process) connects the fleet at 2,000/s, each device sending one TELEMETRY',
  'of 4 records per 10 s and reconnecting after a drop with the protocol\'s backoff (random(0, min(60, 1 x 2^attempt)) s);',
  'once all are in and the load has run 10 s, its admission limit is lifted (so the backoff and the server set the pace)',
  'and the server is restarted: the hub gets SIGTERM (it closes every device with 1001, drains what it can, stops its',
  'managed influxd and exits), then a new hub process starts on the same port and data dir (what the old one did not',
  'deliver is still in its spool). Times are from the SIGTERM; "back" is the connected count device-sim reports (every',
  '100 ms) reaching 99% / all of the devices connected before. Peak accept rate: the most new connections in about 1 s.',
  'The load goes on for 10 s after the fleet is back; then device-sim stops (waiting for its outstanding ACKs), the',
  'spool drains, and the readings of the fleet are counted in InfluxDB. Baseline: the same fleet against a bare `ws`',
  'server (bench/servers/bare-ws.ts) that closes with 1001 and is started again on the same port.',
  'More devices than one process holds run on a hub of workers (`PULSEWIRE_WORKERS`, as in `connections`): the SIGTERM goes',
  'to its primary, which drains every worker (1001 to its devices) and then stops nats-server and influxd; the new hub is a',
  'new primary with as many workers on the same port and data dir (each worker slot finds its spool again, the cluster',
  'state is in the same nats-server store). The fleet runs in several device-sim processes (bench/lib/fleet-group.ts, on',
  'loopback source addresses as device-sim spreads them), the baseline as as many bare servers as the hub has workers,',
  'each on its own port with its part of the fleet, stopped with 1001 and started again together; nothing is pinned. CPU',
  'until 99% back is the whole machine\'s (everyone, neighbours included) and, of it, the device-sim processes\'.',
  'Responsiveness (issue 18): from the 10 s of steady load before the restart until the fleet is back, the bench itself',
  '(bench/lib/restart-probes.ts, unpinned) sends GET /readyz (the event loop and the hub\'s ping of InfluxDB) every 200 ms',
  'on a fixed schedule, whether the previous answer came or not, each on a new TCP connection closed after the answer,',
  'as the kubelet probes (so a probe waits in the listen backlog with the reconnecting devices, as an orchestrator\'s',
  'would); /healthz (the event loop alone) the same, half a period later; and, at the moments of /readyz, a bare',
  'node:http server pinned to the hub\'s core (bench/servers/http-baseline.ts), whose answer time is what the machine',
  'alone does. A probe started between the SIGTERM and the new hub\'s banner is not a latency of the storm (the old hub',
  'drains, then nothing listens): those are counted apart, by outcome. The reconnect window runs from the banner until',
  'every device is back (device-sim\'s count) and 5 s more; its /readyz p99 is judged against 100 ms, with every probe',
  'answered 200. A probe without an answer counts as its timeout, 10 s. The bare ws baseline has no /readyz and is not',
  'probed. Where a slow answer comes from, over the new hub\'s readiness to the window\'s end: its own event-loop delay',
  '(prom-client\'s monitor, 10 ms resolution, between a scrape of /metrics at readiness and one at the end); the CPU its',
  'processes got (a hub far below its core while its answers are slow was waiting for the CPU, not working); its CPU per',
  'device that came back, less what the old hub used for the same fleet\'s steady load before the restart (the handshake,',
  'the session, the REPORTED and the resent window; the new hub\'s own catching up with its spool is in it too); and the',
  'kernel\'s ListenOverflows over the same span (every listener of the machine\'s network namespace, so a neighbour\'s',
  'count too): a connection turned away by a full backlog retries its SYN after 1 s, which a probe on a new connection',
  'would show as an answer of a second or more. Every probe of /readyz and of the bare server is in the JSON',
  '(`responsiveness.readyzTimeline`, `baselineTimeline`: seconds from the SIGTERM, ms) to set against the fleet\'s timeline.',
];

const s = (x: number | undefined) => (x === undefined ? 'never' : fmt(x, 1));
const tally = (t: Record<string, number> | undefined) => (!t || Object.keys(t).length === 0 ? 'none' : Object.entries(t).map(([k, v]) => `${k} ${fmt(v)}`).join(', '));

/** Where a slow answer comes from: the hub's own loop, the CPU it got, the listen backlog. */
function hubSideTable(x: StormHubSide, reconnects: number): Table {
  const d = x.eventLoopDelayMs;
  const pct = (v: number) => `${fmt(v, 0)} %`;
  return {
    title: 'The new hub from its readiness to the end of the reconnect window: its event-loop delay (ms), the CPU it got (% of one core, summed over its processes), and connections a full listen backlog turned away (machine-wide, anyone\'s)',
    head: ['event-loop delay p50', 'p99', 'max', 'hub CPU', 'before the restart (steady load)', 'CPU ms per reconnect (steady load taken out)', 'its influxd CPU', 'machine CPU (of 200 %)', 'listen overflows', 'listen drops'],
    rows: [[
      fmt(d.p50, 1), fmt(d.p99, 1), fmt(d.max, 1), pct(x.cpuPercent.hub), pct(x.steadyCpuPercent), fmt(reconnectCpuMs(x, reconnects), 2),
      pct(x.cpuPercent.influxd), pct(x.cpuPercent.machine), x.listenOverflows === undefined ? '-' : fmt(x.listenOverflows), x.listenDrops === undefined ? '-' : fmt(x.listenDrops),
    ]],
  };
}

/** The hub's CPU over the window less what the steady load took before the restart, per device that came back. */
export function reconnectCpuMs(x: StormHubSide, reconnects: number): number {
  const steadyS = ((Number.isFinite(x.steadyCpuPercent) ? x.steadyCpuPercent : 0) / 100) * x.spanS;
  return reconnects > 0 ? ((x.cpuSeconds - steadyS) * 1000) / reconnects : NaN;
}

function responsivenessTable(x: RestartResponsiveness, bare: RestartResponsiveness | undefined): Table {
  const timed = (name: string, p: PhaseFigures) => [name, fmt(p.probes), fmt(p.p50, 1), fmt(p.p90, 1), fmt(p.p99, 1), fmt(p.max, 1), tally(p.outcomes)];
  const counted = (name: string, d: DownCounts) => [name, fmt(d.probes), '-', '-', '-', '-', `${tally(d.outcomes)} (not timed)`];
  const window = `${fmt(x.bannerS, 1)} to ${fmt(x.windowEndS, 1)} s`;
  return {
    title: `Hub responsiveness through the restart: probe answer time, ms (every ${x.everyMs} ms, a new connection each); reconnect window ${window} after SIGTERM`,
    head: ['probe', 'probes', 'p50', 'p90', 'p99', 'max', 'answers'],
    rows: [
      timed('before the restart (steady load): /readyz', x.before.readyz),
      timed('before the restart: bare HTTP server on the hub\'s core', x.before.baseline),
      counted('hub down (SIGTERM to the new banner): /readyz', x.down.readyz),
      counted('hub down: /healthz', x.down.healthz),
      timed('reconnect window: /readyz (event loop and InfluxDB ping)', x.storm.readyz),
      timed('reconnect window: /healthz (event loop)', x.storm.healthz),
      ...(x.storm.readyzKeptAlive ? [timed('reconnect window: /readyz over a kept-alive connection (no wait in the kernel\'s accept queue)', x.storm.readyzKeptAlive)] : []),
      timed('reconnect window: bare HTTP server on the hub\'s core (the machine alone)', x.storm.baseline),
      ['hub / bare HTTP server, p99 in the window', '', '', '', ratio(x.storm.readyz.p99, x.storm.baseline.p99), '', ''],
      // The same probes against bare ws restarted under the same fleet: what any server on one port meets (the kernel's accept queue).
      ...(bare ? [
        timed(`bare ws restarted the same way, its reconnect window (${fmt(bare.bannerS, 1)} to ${fmt(bare.windowEndS, 1)} s): any path, 200 at once`, bare.storm.readyz),
        ...(bare.storm.readyzKeptAlive ? [timed('bare ws, the same over a kept-alive connection', bare.storm.readyzKeptAlive)] : []),
        ['hub /readyz / bare ws, p99 in each one\'s window', '', '', '', ratio(x.storm.readyz.p99, bare.storm.readyz.p99), '', ''],
      ] : []),
    ],
  };
}

export function stormTables(r: StormResult): Table[] {
  const row = (name: string, x: StormRun) => [
    name, fmt(x.connectedBefore), `${s(x.downS)} (${x.exit ?? '?'})`, s(x.upS), s(x.back99S), s(x.backAllS), fmt(x.peakAcceptsPerSecond),
    fmt(Object.values(x.connectFailures).reduce((a, b) => a + b, 0)),
    s(x.connectSeconds), x.stormCpu ? `${fmt(x.stormCpu.machinePercent, 0)} % (${fmt(x.stormCpu.deviceSimPercent, 0)} %)` : '-',
    x.loopDelayMaxMs === undefined ? '-' : fmt(x.loopDelayMaxMs / 1000, 1),
    (r.workers ?? 1) > 1 && x.fdsTimeline?.length ? fmt(Math.max(...x.fdsTimeline.map((t) => t.fds[0] ?? 0))) : '-',
  ];
  const h = r.hub;
  return [
    {
      title: `Reconnect storm: ${fmt(r.devicesRun)} devices${(r.workers ?? 1) > 1 ? `, hub of ${r.workers} workers (baseline: ${r.workers} bare ws processes)` : ''}, server restarted; seconds from SIGTERM (or close 1001)`,
      head: ['server', 'connected before', 'old process gone (exit)', 'new process up', '99% back', 'all back', 'peak accepts/s', 'failed connection attempts', 'first connect of the fleet (s)', 'CPU until 99% back: machine (device-sim)', 'simulator\'s longest stall (s)', 'hub primary\'s peak descriptors (accepted, not yet handed to a worker)'],
      rows: [
        row('hub', h),
        row('bare ws (baseline)', r.bare),
        ['hub / bare', '', '', '', h.back99S && r.bare.back99S ? ratio(h.back99S, r.bare.back99S) : 'n/a', h.backAllS && r.bare.backAllS ? ratio(h.backAllS, r.bare.backAllS) : 'n/a', ratio(h.peakAcceptsPerSecond, r.bare.peakAcceptsPerSecond), '', '', '', '', ''],
      ],
    },
    ...(h.responsiveness ? [responsivenessTable(h.responsiveness, r.bare.responsiveness)] : []),
    ...(h.hubSide ? [hubSideTable(h.hubSide, h.connectedBefore)] : []),
    {
      title: 'What paced the reconnects: failed connection attempts by reason (device side, whole run) and the new hub\'s refusals before the upgrade',
      head: ['server', 'failed attempts, by reason', 'refused by the new hub before the upgrade, by reason'],
      rows: [
        ['hub', tally(h.connectFailures), h.hubSide ? tally(h.hubSide.handshakeRefusals) : '-'],
        ['bare ws (baseline)', tally(r.bare.connectFailures), '-'],
      ],
    },
    {
      title: 'Hub: loss through the restart (device-sim counts, then InfluxDB after the spool drained)',
      head: ['messages sent', 'resent after reconnect', 'ACKed (0 or 1)', 'unACKed', 'dropped', 'readings sent', 'readings in InfluxDB', 'lost'],
      rows: [[fmt(h.sim.sent), fmt(h.sim.resent), fmt(h.sim.stored), fmt(h.sim.unacknowledged), fmt(h.sim.dropped), fmt(h.sim.records), fmt(h.stored ?? NaN), fmt(h.lost ?? NaN)]],
    },
    targetsTable(r.targets, 'Targets (issues 4 and 18)'),
  ];
}

export function stormMarkdown(r: StormResult, command: string, jsonFile: string, notes: string[]): string {
  const env = Object.entries(r.options.hubEnv ?? {}).map(([k, v]) => `${k}=${v}`);
  const lines = [`Scale: ${r.capNote}.`, ...(env.length ? [`Hub environment besides the defaults: ${env.join(', ')}.`] : [])];
  return sectionMarkdown({ scenario: 'storm', facts: r, lines, command, jsonFile, tables: stormTables(r), notes });
}
