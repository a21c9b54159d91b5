/** Tables and the BENCHMARKS.md section of the latency scenario. */
import type { LatencyFigures } from '../lib/driver.js';
import { fmt, ratio, sectionMarkdown, type Table, targetsTable } from '../lib/report.js';
import { nearestShare, type LatencyResult } from './latency.js';

/** How the figures were taken: the section's closing paragraph. */
export const LATENCY_NOTES = [
  'How: the hub (built dist, own process, managed influxd, fresh data dir) first gets a saturating probe from the closed-loop',
  'driver (bench/lib/driver.ts, as in `ingest`): every ACK it got over the time until the last one (the hub holds ACKs while',
  'its spool holds more than 80,000 points, 30,000 of them on their way to InfluxDB, and releases them in bursts) is the maximum. Each step then offers a share of it at a',
  'fixed fleet-wide rate (the driver sends what is due every 10 ms, round robin over the devices, never more than 32 in flight',
  'per device; "blocked" counts the times every window was full, when latency would hide queueing in the driver). A message\'s',
  'latency is performance.now() from its send to its ACK in the driver, for messages sent after the warm-up; an ACK means',
  '"in the hub\'s spool", and the hub holds ACKs while the spool backlog outruns InfluxDB, so that wait is part of it. Ceiling',
  'A (bare ws + cbor-x, same driver, same absolute rates) is the floor of the socket path on this machine in this run. The',
  'spool is empty before each hub step. The hub runs the 50% rate again after its last step (3 rounds in all by default,',
  '`--half-rounds N`): the target holds only if every round meets it, since one run\'s p99 has swung by 4 x from run to run.',
  'CPU is each process\'s user + system time (/proc) over the step and its drain, per ACK',
  'it got; the saturating probe\'s is the same measure at the maximum. Spool commits are pulsewire_spool_commit_seconds (one',
  'per event turn with TELEMETRY, from the put until the callback ran: lmdb\'s write thread, the disk sync and the wait for',
  'the event loop), as the bucket bound 99% of them fell under.',
  'PULSEWIRE_SPOOL_SYNC=flush: after the ceiling, a second hub (fresh data dir, same placement) started with that setting',
  'gets the same saturating probe and then the first hub\'s 50% rate; its row stands next to the default hub\'s own 50% step.',
  'With `commit` (the default) an ACK waits for the spool\'s lmdb commit, which a crash of the hub cannot undo; with `flush`',
  'it also waits for that commit\'s fsync (lmdb\'s overlappingSync makes it a step of its own), which a power loss cannot undo.',
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
    {
      title: `What each step cost: CPU of the process (its one core) and per ACKed message; the saturating probe: hub CPU ${fmt(r.maxCpu.percent, 0)}%, ${fmt(r.maxCpu.microsPerMessage, 0)} µs per message`,
      head: ['share of max', 'hub CPU', 'hub µs per message', 'vs the probe\'s', 'ceiling A CPU', 'ceiling A µs per message', 'hub / ceiling A per message', 'spool commits', 'commit p99 at most', 'commits over 50 ms'],
      rows: r.steps.map((s) => [
        `${Math.round(s.share * 100)}%`, `${fmt(s.hub.cpu.percent, 0)}%`, fmt(s.hub.cpu.microsPerMessage, 0), ratio(s.hub.cpu.microsPerMessage, r.maxCpu.microsPerMessage),
        `${fmt(s.ceilingA.cpu.percent, 0)}%`, fmt(s.ceilingA.cpu.microsPerMessage, 0), ratio(s.hub.cpu.microsPerMessage, s.ceilingA.cpu.microsPerMessage),
        fmt(s.hub.spoolCommits.count), s.hub.spoolCommits.p99AtMostMs === undefined ? '-' : `${fmt(s.hub.spoolCommits.p99AtMostMs, 0)} ms`, fmt(s.hub.spoolCommits.over50Ms),
      ]),
    },
    ...halfRoundsTables(r),
    ...flushTables(r),
    targetsTable(r.targets),
  ];
}

/** The hub at the 50% rate, round by round: the spread the target is judged over. */
function halfRoundsTables(r: LatencyResult): Table[] {
  const rounds = r.halfRounds ?? [];
  if (rounds.length < 2) return [];
  const share = nearestShare(r.steps.map((s) => s.share), 0.5);
  const half = r.steps.find((s) => s.share === share)!;
  return [{
    title: `The hub at ${Math.round(half.share * 100)}% (${fmt(half.offeredMessagesPerSecond)} messages/s), round by round: the step above, then again after the last step (send-to-ACK ms)`,
    head: ['round', 'ACKed msg/s', 'p50', 'p99', 'p999', 'max', 'hub CPU', 'µs per message', 'spool commits', 'commit p99 at most', 'commits over 50 ms', 'non-zero ACKs + unACKed'],
    rows: [
      ...rounds.map((h, i) => [
        String(i + 1), fmt(h.ackedMessagesPerSecond), ...cols(h.latencyMs), `${fmt(h.cpu.percent, 0)}%`, fmt(h.cpu.microsPerMessage, 0), fmt(h.spoolCommits.count),
        h.spoolCommits.p99AtMostMs === undefined ? '-' : `${fmt(h.spoolCommits.p99AtMostMs, 0)} ms`, fmt(h.spoolCommits.over50Ms), fmt(h.nonZeroAcks + h.unacknowledged),
      ]),
      ['spread (max / min)', '', '', ratio(Math.max(...rounds.map((h) => h.latencyMs.p99)), Math.min(...rounds.map((h) => h.latencyMs.p99))), '', '', '', '', '', '', '', ''],
    ],
  }];
}

/** The default hub's 50% step next to the PULSEWIRE_SPOOL_SYNC=flush hub at the same rate. */
function flushTables(r: LatencyResult): Table[] {
  const f = r.flush;
  const commit = f && r.steps.find((s) => s.share === f.share);
  if (!f || !commit) return [];
  const row = (mode: string, max: number, s: LatencyResult['steps'][number]['hub'], offered: number) => [
    mode, fmt(max), ratio(max, r.maxMessagesPerSecond), fmt(offered), fmt(s.ackedMessagesPerSecond), ...cols(s.latencyMs),
    fmt(s.cpu.microsPerMessage, 0), ratio(s.cpu.microsPerMessage, commit.hub.cpu.microsPerMessage), fmt(s.spoolCommits.count),
    s.spoolCommits.p99AtMostMs === undefined ? '-' : `${fmt(s.spoolCommits.p99AtMostMs, 0)} ms`, fmt(s.nonZeroAcks + s.unacknowledged),
  ];
  return [{
    title: `What PULSEWIRE_SPOOL_SYNC=flush costs (ACK 0 also waits for the spool's fsync): its own maximum, and send-to-ACK ms at the default hub's ${Math.round(f.share * 100)}% rate`,
    head: ['spool sync', 'maximum msg/s', 'vs commit', 'offered msg/s', 'ACKed msg/s', 'p50', 'p99', 'p999', 'max', 'µs per message', 'vs commit', 'spool commits', 'commit p99 at most', 'non-zero ACKs + unACKed'],
    rows: [
      row('commit (default)', r.maxMessagesPerSecond, commit.hub, commit.offeredMessagesPerSecond),
      row('flush', f.maxMessagesPerSecond, f.step, f.offeredMessagesPerSecond),
    ],
  }];
}

export function latencyMarkdown(r: LatencyResult, command: string, jsonFile: string, notes: string[]): string {
  return sectionMarkdown({ scenario: 'latency', facts: r, command, jsonFile, tables: latencyTables(r), notes });
}
