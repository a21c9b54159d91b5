/** Tables and the BENCHMARKS.md section of the connections scenario. */
import { machineLine } from '../lib/machine.js';
import { fmt, markdownTable, type Table } from '../lib/report.js';
import type { ConnectionsResult } from './connections.js';

const kib = (b: number) => fmt(b / 1024, 1);
const mib = (b: number) => fmt(b / 2 ** 20, 0);

export function connectionsTables(r: ConnectionsResult): Table[] {
  const o = r.options;
  return [
    {
      title: `Idle devices held: ping every ${o.pingIntervalMs / 1000} s, ${o.rate} TELEMETRY/s per device; RSS after ${o.settleS} s settle (median over ${o.measureS} s), CPU over ${o.measureS} s`,
      head: ['devices', 'hub held', 'hub RSS idle -> held (MiB)', 'hub KiB/conn', 'bare ws KiB/conn', 'hub / bare', 'hub CPU % (peak 0.5 s)', 'bare CPU % (peak 0.5 s)', 'sent / stored / lost / unACKed'],
      rows: r.steps.map((s) => [
        fmt(s.devices), fmt(s.hub.connected), `${mib(s.hub.rssIdleBytes)} -> ${mib(s.hub.rssHeldBytes)}`, kib(s.hub.bytesPerConnection), kib(s.bare.bytesPerConnection),
        `${s.ratio.toFixed(2)} x`, `${fmt(s.hub.cpuPercent, 1)} (${fmt(s.hub.cpuPeakPercent, 0)})`, `${fmt(s.bare.cpuPercent, 1)} (${fmt(s.bare.cpuPeakPercent, 0)})`,
        `${fmt(s.hub.sim.sent)} / ${fmt(s.hub.sim.stored)} / ${fmt(s.hub.lost)} / ${fmt(s.hub.sim.unacknowledged)}`,
      ]),
    },
    { title: 'Targets (issue 4)', head: ['target', 'figure', 'met'], rows: r.targets.map((t) => [t.target, t.figure, t.met ? 'met' : 'NOT met']) },
  ];
}

export function connectionsMarkdown(r: ConnectionsResult, command: string, jsonFile: string, notes: string[]): string {
  return [
    '## connections',
    '',
    `Machine: ${machineLine(r.machine)}.`,
    `Placement: ${r.placement.note}.`,
    `Cap: ${fmt(r.cap)} devices: ${r.capReason}.`,
    `Reproduce: \`${command}\` (full result: \`${jsonFile}\`, not committed).`,
    '',
    ...connectionsTables(r).flatMap((t) => [`**${t.title}**`, '', markdownTable(t), '']),
    ...notes,
  ].join('\n');
}
