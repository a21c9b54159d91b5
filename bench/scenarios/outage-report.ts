/** Tables and the BENCHMARKS.md section of the outage scenario. */
import { fmt, ratio, sectionMarkdown, type Table, targetsTable } from '../lib/report.js';
import type { OutageResult } from './outage.js';

/** How the figures were taken: the section's closing paragraph. */
export const OUTAGE_NOTES = [
  'How: the bench runs influxd itself (startManagedInfluxd) and points the hub (built dist, own process) at it with',
  'PULSEWIRE_INFLUX_URL, since a managed influxd would be restarted by the hub at once. The outage is a clean stop of',
  'that influxd; the recovery is a new influxd on the same data dir and HTTP port. The driver sends at a fixed',
  'fleet-wide rate (window 32 per device) throughout. Spool depth and InfluxDB confirmations come from the hub\'s',
  '/metrics, sampled every 250 ms; "normal" is points/s into InfluxDB over the second half of the steady phase, that',
  'is the offered load. Catch-up includes the new load arriving meanwhile; net drain is the backlog at recovery over',
  'the time to empty. Loss is counted in InfluxDB after the spool drained.',
];

export function outageTables(r: OutageResult): Table[] {
  const o = r.options;
  const n = r.normalIngestPointsPerSecond;
  return [
    {
      title: `Steady ${fmt(o.readingsPerSecond)} readings/s offered (${o.devices} devices, batches of ${o.batch}); InfluxDB down ${o.outageS} s after ${o.beforeS} s; load on for ${o.afterS} s after`,
      head: ['measure', 'value', 'vs normal'],
      rows: [
        ['normal ingest, points/s into InfluxDB (before the outage)', fmt(n), '1.00 x'],
        ['ACKs/s before the outage (code 0)', fmt(r.acks.beforePerSecond), ''],
        ['ACKs/s during the outage (code 0)', fmt(r.acks.duringOutagePerSecond), ratio(r.acks.duringOutagePerSecond, r.acks.beforePerSecond)],
        ['non-zero ACKs during the outage', fmt(r.acks.nonZeroDuringOutage), ''],
        ['spool peak: entries / readings / MiB', `${fmt(r.spoolPeak.entries)} / ${fmt(r.spoolPeak.readings)} / ${fmt(r.spoolPeak.bytes / 2 ** 20, 1)}`, ''],
        ['first write after InfluxDB was back (s)', fmt(r.recovery.firstWriteAfterS, 1), ''],
        ['spool empty after InfluxDB was back (s, load still on)', r.recovery.spoolEmptyAfterS === undefined ? 'not under load' : fmt(r.recovery.spoolEmptyAfterS, 1), ''],
        ['catch-up: points/s into InfluxDB until the spool was empty', fmt(r.recovery.catchUpPointsPerSecond), ratio(r.recovery.catchUpPointsPerSecond, n)],
        ['net drain: backlog readings / time to empty, per s', fmt(r.recovery.netDrainReadingsPerSecond), ratio(r.recovery.netDrainReadingsPerSecond, n)],
        ['readings sent / ACKed / stored / lost', `${fmt(r.loss.readingsSent)} / ${fmt(r.loss.readingsAcked)} / ${fmt(r.loss.stored)} / ${fmt(r.loss.lost)}`, ''],
      ],
    },
    { title: 'Checks (issue 5)', head: ['check', 'figure', 'met'], rows: r.targets.map((t) => [t.target, t.figure, t.met ? 'met' : 'NOT met']) },
  ];
}

export function outageMarkdown(r: OutageResult, command: string, jsonFile: string, notes: string[]): string {
  return sectionMarkdown({ scenario: 'outage', facts: r, command, jsonFile, tables: outageTables(r), notes });
}
