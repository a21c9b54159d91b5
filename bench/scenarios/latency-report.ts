/** Tables and the BENCHMARKS.md section of the latency scenario. */
import type { LatencyFigures } from '../lib/driver.js';
import { fmt, ratio, sectionMarkdown, type Table, targetsTable } from '../lib/report.js';
import type { LatencyResult } from './latency.js';

/** How the figures were taken: the section's closing paragraph. */
export const LATENCY_NOTES = [
  'How: the hub (built dist, own process, managed influxd, fresh data dir) first gets a saturating probe from the closed-loop',
  'driver (bench/lib/driver.ts, as in `ingest`): every ACK it got over the time until the last one (the hub holds ACKs while',
  'its spool holds more than 50,000 points and releases them in bursts) is the maximum. Each step then offers a share of it at a',
  'fixed fleet-wide rate (the driver sends what is due every 10 ms, round robin over the devices, never more than 32 in flight',
  'per device; "blocked" counts the times every window was full, when latency would hide queueing in the driver). A message\'s',
  'latency is performance.now() from its send to its ACK in the driver, for messages sent after the warm-up; an ACK means',
  '"in the hub\'s spool", and the hub holds ACKs while the spool backlog outruns InfluxDB, so that wait is part of it. Ceiling',
  'A (bare ws + cbor-x, same driver, same absolute rates) is the floor of the socket path on this machine in this run. The',
  'spool is empty before each hub step.',
];

const ms = (x: number) => fmt(x, 1);
const cols = (l: LatencyFigures) => [ms(l.p50), ms(l.p99), ms(l.p999), ms(l.max)];

export function latencyTables(r: LatencyResult): Table[] {
  const o = r.options;
  return [
    {
      title: `Send-to-ACK ms, ${fmt(o.devices)} devices, batches of ${o.batch}, ${o.stepSeconds} s per step (first ${o.warmupSeconds} s not recorded); hub maximum ${fmt(r.maxMessagesPerSecond)} messages/s = ${fmt(r.maxReadingsPerSecond)} readings/s (saturating probe, ${o.probeSeconds} s)`,
      head: ['share of max', 'offered msg/s', 'hub ACKed msg/s', 'hub p50', 'hub p99', 'hub p999', 'hub max', 'ceiling A p50', 'ceiling A p99', 'ceiling A p999', 'ceiling A max', 'hub p99 / ceiling A p99', 'blocked (hub / ceiling A)'],
      rows: r.steps.map((s) => [
        `${Math.round(s.share * 100)}%`, fmt(s.offeredMessagesPerSecond), fmt(s.hub.ackedMessagesPerSecond),
        ...cols(s.hub.latencyMs), ...cols(s.ceilingA.latencyMs), ratio(s.hub.latencyMs.p99, s.ceilingA.latencyMs.p99), `${fmt(s.hub.blocked)} / ${fmt(s.ceilingA.blocked)}`,
      ]),
    },
    targetsTable(r.targets),
  ];
}

export function latencyMarkdown(r: LatencyResult, command: string, jsonFile: string, notes: string[]): string {
  return sectionMarkdown({ scenario: 'latency', facts: r, command, jsonFile, tables: latencyTables(r), notes });
}
