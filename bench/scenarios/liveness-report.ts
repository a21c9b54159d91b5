/** Tables and the BENCHMARKS.md section of the liveness scenario. */
import { machineLine } from '../lib/machine.js';
import { fmt, markdownTable, type Table } from '../lib/report.js';
import type { Distribution, LivenessResult } from './liveness.js';

const s = (ms: number) => fmt(ms / 1000, 2);

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
    { title: 'Targets (issue 4)', head: ['target', 'figure', 'met'], rows: r.targets.map((t) => [t.target, t.figure, t.met ? 'met' : 'NOT met']) },
  ];
}

export function livenessMarkdown(r: LivenessResult, command: string, jsonFile: string, notes: string[]): string {
  return [
    '## liveness',
    '',
    `Machine: ${machineLine(r.machine)}.`,
    `Placement: ${r.placement.note}.`,
    `Scale: ${r.capNote}.`,
    `Reproduce: \`${command}\` (full result: \`${jsonFile}\`, not committed).`,
    '',
    ...livenessTables(r).flatMap((t) => [`**${t.title}**`, '', markdownTable(t), '']),
    ...notes,
  ].join('\n');
}
