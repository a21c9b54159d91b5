/** Tables and the BENCHMARKS.md section of the ingest scenario. */
import { fmt, ratio, sectionMarkdown, type Table, targetsTable } from '../lib/report.js';
import type { IngestResult } from './ingest.js';

/** How the figures were taken: the section's closing paragraph. */
export const INGEST_NOTES = [
  'How: the hub is `node dist/src/main.js` as its own process with its managed influxd and a fresh data dir. The load is',
  'bench/lib/driver.ts, a purpose-built closed-loop driver in its own process (device-sim refills windows only on its',
  '100 ms tick and caps a device at 100 messages/s, so it cannot show a maximum): each device keeps 32 TELEMETRY',
  'messages in flight and sends the next on each ACK; frames are the hub\'s own encoding, patched per message. An ACK',
  'means "in the lmdb spool"; the hub then drains the spool into InfluxDB, so "readings/s ACKed" and "points/s into',
  'InfluxDB" (points InfluxDB confirmed, from load start until the spool was empty) are both given; the second is the',
  'rate the hub sustains end to end (while the ACK rate exceeds it, the spool grows: "spool full after" says how long the',
  'default 1 GiB bound lasts at that growth, after which devices get ACK 4). CPU-s / M readings is the measured process\'s utime+stime (/proc) from load start',
  'until its work was done (for the hub: spool drained), per million readings ACKed. "driver CPU" near 100% means the',
  'load generator, not the measured process, was the limit (a ceiling figure marked ">=" is then a lower bound). Ceiling A answers each frame with the same ACK the hub',
  'sends (the driver waits for ACKs) but does no auth, validation, storage. Ceiling B is node-influx configured as the',
  'hub configures it, writing the same points (schema.ts readingPoints) in requests of 5,000 with 2 concurrent, into a',
  'fresh influxd of the same version, for the same duration. The Node-RED peer is Node-RED 4 (`node-red/red.js`, own process,',
  'pinned like the hub, settings and flow in a temp dir, loopback, no editor) with the flow of bench/servers/node-red-peer.ts',
  'writing to its own fresh influxd; it answers each message with [2, seq] once decoded (not stored: it has no spool), so',
  'the same closed-loop driver runs it. Its InfluxDB count is polled every second during the load and after it until it',
  'has not grown for 10 s: "lost" is sent minus stored then, "stored after the load stopped" what arrived late.',
  'Workers phase (issue 17, bench/scenarios/ingest-workers.ts): the same closed-loop driver and batches against a fresh hub',
  'of one process (`PULSEWIRE_WORKERS=1`, no NATS: the hub of the phases above, but unpinned) and a fresh hub of workers',
  '(a primary, the workers sharing the port, the nats-server the primary runs), each with its managed influxd; the',
  'driver\'s devices land on the workers as node:cluster hands out the connections. Nothing is pinned (a hub of workers is',
  'there to use every core), so every process, the driver and the neighbours share both cores; the machine\'s CPU and the',
  'share no process of ours used ("others") are shown. CPU-s / M readings: utime+stime from load start until every spool',
  'was empty, summed over the primary and the workers, nats-server\'s added; influxd apart. Configurations alternate,',
  'the order turning each round; ratios are per round to the first configuration, then the median.',
];

export function ingestTables(r: IngestResult): Table[] {
  const { ceilingA: a, ceilingB: b, hub, peer: p } = r;
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
      title: `Node-RED peer (websocket in, cbor-x in a function node, node-red-contrib-influxdb batch out), same driver load: batches of ${o.batch}, ${o.devices} devices, ${o.peerSeconds} s`,
      head: ['', 'readings/s received (answered)', 'points/s into InfluxDB', 'hub / peer', 'readings sent', 'stored', 'lost', 'stored after the load stopped', 'last stored after stop (s)', 'CPU-s / M stored', 'peer CPU', 'peak RSS (MiB)'],
      rows: [[
        'Node-RED peer', fmt(p.readingsReceivedPerSecond), fmt(p.pointsPerSecond), ratio(hub.batch.influxPointsPerSecond, p.pointsPerSecond), fmt(p.readingsSent), fmt(p.stored), fmt(p.lost),
        fmt(p.delayedReadings), fmt(p.lastStoredAfterStopS, 1), fmt(p.cpuSecondsPerMillionStored, 2), share(p.subjectCpuShare), fmt(p.peakRssMiB),
      ]],
    },
    ...(r.workers ? workersTables(r) : []),
    targetsTable(r.targets),
  ];
}

function workersTables(r: IngestResult): Table[] {
  const w = r.workers!;
  const o = r.options;
  const name = (n: number) => (n === 1 ? 'one process' : `${n} workers`);
  const pct = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '-' : `${fmt(x, 0)} %`);
  const perM = (x: number) => (Number.isFinite(x) ? fmt(x, 2) : '-');
  return [
    {
      title: `Hub of workers (issue 17): batches of ${o.batch}, ${o.devices} devices, ${o.workersSeconds} s per run, nothing pinned; medians of ${o.workersRounds} rounds, ratios to ${name(w.summary[0]!.workers)} (median of per-round ratios)`,
      head: ['configuration', 'readings/s into InfluxDB', 'vs first', 'CPU-s / M readings: hub processes + nats-server', 'vs first', 'per round (readings/s ratio)'],
      rows: w.summary.map((s) => [name(s.workers), fmt(s.influxPointsPerSecond), `${s.vsFirst.influxPointsPerSecond.toFixed(2)} x`, perM(s.cpuPerMillionHubAndNats), `${s.vsFirst.cpuPerMillionHubAndNats.toFixed(2)} x`, s.perRound.map((x) => x.toFixed(2)).join(', ')]),
    },
    {
      title: 'Hub of workers, each run: loss check and where the CPU went (load start until every spool was empty; one core = 100 %)',
      head: ['round: configuration', 'devices connected', 'readings/s ACKed', 'readings/s into InfluxDB', 'sent', 'stored', 'lost', 'non-zero ACKs / unACKed', 'drain (s)', 'CPU-s / M: hub / nats-server / influxd / driver', 'hub CPU', 'nats-server CPU', 'influxd CPU', 'driver CPU', 'machine CPU (others)'],
      rows: w.runs.map((x) => [
        `round ${x.round}: ${name(x.workers)}`, fmt(x.connected), fmt(x.ackedPerSecond), fmt(x.influxPointsPerSecond), fmt(x.readingsSent), fmt(x.stored), fmt(x.lost),
        `${fmt(x.nonZeroAcks)} / ${fmt(x.unacknowledged)}`, fmt(x.drainSeconds, 1),
        `${perM(x.cpuPerMillion.hub)} / ${x.workers > 1 ? perM(x.cpuPerMillion.nats) : '-'} / ${perM(x.cpuPerMillion.influxd)} / ${perM(x.cpuPerMillion.driver)}`,
        pct(x.cpu.percent.hub), pct(x.cpu.percent['nats-server']), pct(x.cpu.percent.influxd), pct(x.cpu.percent.driver), `${pct(x.cpu.machinePercent)} (${pct(x.cpu.othersPercent)})`,
      ]),
    },
  ];
}

export function ingestMarkdown(r: IngestResult, command: string, jsonFile: string, notes: string[]): string {
  return sectionMarkdown({ scenario: 'ingest', facts: r, command, jsonFile, tables: ingestTables(r), notes });
}
