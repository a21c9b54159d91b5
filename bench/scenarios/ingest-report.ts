/** Tables and the BENCHMARKS.md section of the ingest scenario. */
import { machineLine } from '../lib/machine.js';
import { fmt, markdownTable, ratio, type Table } from '../lib/report.js';
import type { IngestResult } from './ingest.js';

export function ingestTables(r: IngestResult): Table[] {
  const { ceilingA: a, ceilingB: b, hub } = r;
  const o = r.options;
  const share = (x: number) => `${Math.round(x * 100)}%`;
  // A ceiling whose driver ran out of core while the ceiling did not is a lower bound.
  const atLeast = (p: { driverCpuShare: number; subjectCpuShare: number }, text: string) => (p.driverCpuShare > 0.9 && p.subjectCpuShare < 0.9 ? `>= ${text}` : text);
  return [
    {
      title: `Batches of ${o.batch} records, ${o.devices} devices, ${o.seconds} s, window ${o.window} per device`,
      head: ['', 'readings/s ACKed', 'points/s into InfluxDB', 'vs ceiling B', 'CPU-s / M readings', 'subject CPU', 'driver CPU'],
      rows: [
        ['ceiling A: bare ws + cbor-x, no storage', atLeast(a.batch, fmt(a.batch.readingsPerSecond)), '-', '-', fmt(a.batch.cpuSecondsPerMillionReadings, 2), share(a.batch.subjectCpuShare), share(a.batch.driverCpuShare)],
        ['ceiling B: node-influx alone', '-', fmt(b.pointsPerSecond), '1.00 x', `${fmt(b.writerCpuSecondsPerMillionPoints, 2)} (+ influxd ${fmt(b.influxdCpuSecondsPerMillionPoints, 2)})`, '-', '-'],
        ['hub (spool, then InfluxDB)', fmt(hub.batch.readingsPerSecond), fmt(hub.batch.influxPointsPerSecond), ratio(hub.batch.influxPointsPerSecond, b.pointsPerSecond), `${fmt(hub.batch.cpuSecondsPerMillionReadings, 2)} (+ influxd ${fmt(hub.batch.influxdCpuSecondsPerMillionReadings, 2)})`, share(hub.batch.subjectCpuShare), share(hub.batch.driverCpuShare)],
        ['hub / ceiling A', ratio(hub.batch.readingsPerSecond, a.batch.readingsPerSecond), '', '', ratio(hub.batch.cpuSecondsPerMillionReadings, a.batch.cpuSecondsPerMillionReadings), '', ''],
      ],
    },
    {
      title: `One record per message (per-message cost), ${o.devices} devices, ${o.singleSeconds} s`,
      head: ['', 'messages/s ACKed', 'vs ceiling A', 'CPU-s / M messages', 'vs ceiling A', 'subject CPU', 'driver CPU'],
      rows: [
        ['ceiling A: bare ws + cbor-x', atLeast(a.single, fmt(a.single.messagesPerSecond)), '1.00 x', fmt(a.single.cpuSecondsPerMillionReadings, 2), '1.00 x', share(a.single.subjectCpuShare), share(a.single.driverCpuShare)],
        ['hub', fmt(hub.single.messagesPerSecond), ratio(hub.single.messagesPerSecond, a.single.messagesPerSecond), fmt(hub.single.cpuSecondsPerMillionReadings, 2), ratio(hub.single.cpuSecondsPerMillionReadings, a.single.cpuSecondsPerMillionReadings), share(hub.single.subjectCpuShare), share(hub.single.driverCpuShare)],
      ],
    },
    {
      title: 'Hub: loss check (counted in InfluxDB after the spool drained) and spool',
      head: ['phase', 'readings sent', 'ACKed (code 0)', 'stored', 'lost', 'points/s into InfluxDB during load', 'spool peak (readings / MiB)', 'spool full (1 GiB) after', 'drain after load (s)', '/metrics response during load (median / max ms)'],
      rows: (['batch', 'single'] as const).map((k) => {
        const p = hub[k];
        return [
          k === 'batch' ? `batches of ${o.batch}` : 'one record', fmt(p.readingsSent), fmt(p.readingsAcked), fmt(p.stored), fmt(p.lost),
          fmt(p.influxPointsPerSecondDuringLoad), `${fmt(p.spoolPeakReadings)} / ${fmt(p.spoolPeakBytes / 2 ** 20)}`,
          p.secondsUntilSpoolFull === undefined ? '-' : `${fmt(p.secondsUntilSpoolFull)} s`, fmt(p.drainSeconds, 1),
          `${fmt(p.scrapeMsMedianDuringLoad)} / ${fmt(p.scrapeMsMaxDuringLoad)}`,
        ];
      }),
    },
    {
      title: 'Targets (issue 4)',
      head: ['target', 'figure', 'met'],
      rows: r.targets.map((t) => [t.target, t.figure, t.met ? 'met' : 'NOT met']),
    },
  ];
}

export function ingestMarkdown(r: IngestResult, command: string, jsonFile: string, notes: string[]): string {
  return [
    '## ingest',
    '',
    `Machine: ${machineLine(r.machine)}.`,
    `Placement: ${r.placement.note}.`,
    `Reproduce: \`${command}\` (full result: \`${jsonFile}\`, not committed).`,
    '',
    ...ingestTables(r).flatMap((t) => [`**${t.title}**`, '', markdownTable(t), '']),
    ...notes,
  ].join('\n');
}
