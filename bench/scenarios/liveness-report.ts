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
];

export function livenessTables(r: LivenessResult): Table[] {
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
    targetsTable(r.targets),
  ];
}

export function livenessMarkdown(r: LivenessResult, command: string, jsonFile: string, notes: string[]): string {
  return sectionMarkdown({ scenario: 'liveness', facts: r, lines: [`Scale: ${r.capNote}.`], command, jsonFile, tables: livenessTables(r), notes });
}
