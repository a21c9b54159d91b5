/** Tables and the BENCHMARKS.md section of the liveness scenario. */
import { fmt, sectionMarkdown, type Table, targetsTable } from '../lib/report.js';
import type { Distribution, LivenessResult } from './liveness.js';

const s = (ms: number) => fmt(ms / 1000, 2);

/** How the figures were taken: the section's closing paragraph. */
export const LIVENESS_NOTES = [
  'How: one hub (built dist, managed influxd, PULSEWIRE_PING_INTERVAL_MS as given) and one device-sim fleet in its own',
  'process with the `zombies` option (zombie sockets have autoPong off: they never answer a ping but keep TCP open and keep',
  'sending TELEMETRY, which the hub does not count as a sign of life). A zombie\'s last sign of life is its connection, so',
  'each time is measured from it: on the device side from the socket\'s open to its drop by the hub (20 ms polls), on the hub',
  'side from the device\'s connectedAt to the first operator-API poll (`GET /v1/devices?online=false`, every 250 ms, all',
  'pages) listing it offline with reason ping-timeout. Devices do not reconnect during the run. The hub\'s sweep (one timer',
  'for all sockets, every half interval) pings each socket at the first sweep after it connected and then once per interval,',
  'and drops a socket whose ping is one interval old without a pong: a zombie goes one to one and a half intervals after its',
  'connection, plus the delays of the sweeps (src/gateway/liveness.ts).',
  'More devices than one process holds run on a hub of workers (`PULSEWIRE_WORKERS`, as in `connections`): each worker',
  'sweeps its own sockets, and the API poll, served by whichever worker takes it, lists the whole hub (every worker is a',
  'cluster node; device status through NATS). The fleet then runs in several device-sim processes (bench/lib/fleet-group.ts),',
  'on loopback source addresses as device-sim spreads them; nothing is pinned.',
];

export function livenessTables(r: LivenessResult): Table[] {
  const pct = (name: string) => (r.cpu?.percent[name] === undefined ? '-' : `${fmt(r.cpu.percent[name]!, 0)} %`);
  const failed = Object.values(r.sim.connectFailures).reduce((a, b) => a + b, 0);
  const row = (name: string, d: Distribution) => [name, fmt(d.count), s(d.min), s(d.p50), s(d.p99), s(d.max), `${(d.max / r.boundMs).toFixed(2)} x`, fmt(d.overBound)];
  return [
    {
      title: `${fmt(r.devicesRun)} devices, ${fmt(r.zombies)} zombies, ping every ${r.options.pingIntervalMs / 1000} s: seconds from a zombie's connection (its last sign of life) to offline; bound ${r.boundMs / 1000} s`,
      head: ['measured at', 'zombies', 'min', 'p50', 'p99', 'max', 'max / bound', 'over bound'],
      rows: [
        row('device side: socket dropped by the hub (20 ms polls)', r.deviceSide),
        row(`hub API: listed offline, reason ping-timeout (${r.options.pollMs} ms polls, median poll ${fmt(r.pollMsMedian)} ms): upper bound`, r.hubSide),
        row('hub API: lower bound (the poll before did not list it)', r.hubSideLowerBound),
      ],
    },
    {
      title: 'Connecting the fleet and holding it: CPU from the first connection to the end of the run (one core = 100 %)',
      head: ['devices', 'hub processes', 'connected after (s)', 'failed handshakes (retried)', 'hub CPU', 'nats-server CPU', 'influxd CPU', 'device-sim CPU', 'machine CPU (others)', 'simulator\'s longest stall (s)'],
      rows: [[
        fmt(r.devicesRun), (r.workers ?? 1) > 1 ? `primary + ${r.workers} workers` : '1', r.connectSeconds === undefined ? '-' : fmt(r.connectSeconds, 1), fmt(failed),
        pct('hub'), pct('nats-server'), pct('influxd'), pct('device-sim'), r.cpu ? `${fmt(r.cpu.machinePercent, 0)} % (${fmt(r.cpu.othersPercent, 0)} %)` : '-',
        r.sim.loopDelayMaxMs === undefined ? '-' : fmt(r.sim.loopDelayMaxMs / 1000, 1),
      ]],
    },
    targetsTable(r.targets),
  ];
}

export function livenessMarkdown(r: LivenessResult, command: string, jsonFile: string, notes: string[]): string {
  return sectionMarkdown({ scenario: 'liveness', facts: r, lines: [`Scale: ${r.capNote}.`], command, jsonFile, tables: livenessTables(r), notes });
}
