/** Tables and the BENCHMARKS.md section of the soak scenario. */
import type { ProbeFigures } from '../lib/http-probe.js';
import { fmt, sectionMarkdown, type Table, targetsTable } from '../lib/report.js';
import type { Slope, SoakResult } from './soak.js';

/** How the figures were taken, and why the bounds are what they are: the section's closing paragraph. */
export const SOAK_NOTES = [
  'How: a hub (built dist, own process, managed influxd, fresh data dir) first gets latency\'s saturating probe (1,000 driver',
  'devices, batches of 10, closed loop): every ACK over the time until the last is the maximum. A second hub, started fresh so',
  'its memory owes nothing to the probe (inspector open on loopback for the forced GCs), gets the soak: one device-sim fleet in',
  'its own process (bench/lib/fleet-worker.ts) offers half of it, spread evenly over its devices in batches of 10, with',
  'device-sim\'s chaos: flapping devices drop their TCP connection (no close frame) at random, every 20 s on average, zombies',
  'never answer a ping; both reconnect with the protocol\'s backoff and resend their unACKed window byte for byte. Memory:',
  '/proc/PID/status (VmRSS, RssAnon, RssFile) and the hub\'s /metrics (V8 heap used, prom-client) every 5 s, and every 3 minutes',
  'a full compacting GC through the inspector with V8\'s heap used and VmRSS right after it. The samples every 5 s swing with',
  'the GC (the heap fills with garbage for minutes before a major GC, and RSS follows), so their slopes carry a large error;',
  'the target is judged on the samples right after each full GC, the same state of the heap each time. Even then the heap kept',
  'alive holds whatever backlog the hub has at that moment (frames read but not yet spooled, points waiting for InfluxDB: tens',
  'of MiB when a neighbour starves it), so the slope judged is Theil–Sen\'s, the median of the slopes between every two GCs: a',
  'leak raises every point after it, a backlog only the GCs it overlapped. Least squares with its standard error is shown next',
  'to it, and the second half\'s slope tells warm-up (it shrinks) from a leak (it holds). Slopes are over the run after its',
  'first 20% (the heap, V8\'s reservations and the spool\'s pages grow to their working size). The bound, 10 MiB/hour: at a few',
  'thousand messages/s and about 2.5 reconnects/s (the table gives this run\'s rate) a leak of one byte per message is about 10',
  'MiB/hour and one of 1 KiB per reconnect about 9 MiB/hour, so the bound catches the smallest leak per message or per session',
  'that would matter over weeks of uptime; a smaller one is below what 24 minutes of samples tell from the GC\'s and the',
  'allocator\'s noise, and the bound does not claim it. Loss: device-sim counts messages sent (first transmissions), ACKed (0',
  'stored, 1 duplicate of a resend already stored) and still unACKed after its drain (long enough for a device in its longest',
  'backoff, 60 s, to come back and resend); readings are counted in InfluxDB (`count(*)` of the soak\'s devices) once the spool',
  'is empty. Liveness: device-sim\'s side of every session of every device, polled every 20 ms; the operator API (`GET',
  '/v1/devices?online=false`, all pages) every 5 s, and each steady device it lists offline is checked against its socket right',
  'after. Responsiveness: /readyz and /healthz, each once a second on a fixed schedule (a stall delays several probes, none is',
  'skipped), by the bench process itself (unpinned); /readyz includes the hub\'s ping of InfluxDB, /healthz is the event loop',
  'alone; a bare node:http server pinned to the hub\'s core (bench/servers/http-baseline.ts) is probed at the same moments, so a',
  'slow answer can be put down to the hub or to the machine. Probes that overlapped one of the bench\'s forced GCs are left out',
  'and counted. The /readyz bound, p99 under 100 ms, is issue 18\'s bar for the reconnect storm.',
];

const mib = (v: number) => fmt(v, 1);
const slopeCells = (s: Slope) => [mib(s.firstMiB), mib(s.lastMiB), fmt(s.medianMiBPerHour, 1), fmt(s.miBPerHour, 1), fmt(s.stdError, 1), fmt(s.points)];
const sec = (ms: number) => fmt(ms / 1000, 1);
const probeRow = (name: string, p: ProbeFigures & { skipped: number }) =>
  [name, fmt(p.probes), fmt(p.p50, 1), fmt(p.p90, 1), fmt(p.p99, 1), fmt(p.p999, 1), fmt(p.max, 1), fmt(p.notOk), fmt(p.skipped)];
const tally = (t: Record<string, number>) => (Object.keys(t).length === 0 ? 'none' : Object.entries(t).map(([k, v]) => `${k} ${fmt(v)}`).join(', '));

export function soakTables(r: SoakResult): Table[] {
  const o = r.options;
  const m = r.memory;
  const l = r.loss;
  const v = r.liveness;
  const z = v.zombieSessions;
  const bound = o.slopeBoundMiBPerHour;
  const perS = (msgs: number) => [fmt(msgs), fmt(msgs * o.batch), `${fmt((100 * msgs) / r.maxMessagesPerSecond, 0)}%`];
  const windowMin = `${fmt(r.window.fromS / 60, 1)} to ${fmt(r.window.toS / 60, 1)} min`;
  return [
    {
      title: `Load: ${fmt(o.devices)} devices (${v.zombies} zombies, ${v.flapping} flapping, ${v.steady} steady), batches of ${o.batch}, ${fmt(r.loadSeconds / 60, 1)} min, ping every ${o.pingIntervalMs / 1000} s`,
      head: ['', 'messages/s', 'readings/s', 'of the maximum'],
      rows: [
        [`maximum (saturating probe, ${o.probeSeconds} s, ${fmt(o.probeDevices)} driver devices)`, ...perS(r.maxMessagesPerSecond)],
        [`offered (${fmt(r.ratePerDevice, 2)} messages/s per device)`, ...perS(r.offeredMessagesPerSecond)],
        ['sent by the fleet (first transmissions; devices in backoff send nothing)', ...perS(r.sentMessagesPerSecond)],
        ['ACKed', ...perS(r.ackedMessagesPerSecond)],
      ],
    },
    {
      title: 'CPU over the load, % of one core (the machine has two; others: what no process of this run used, i.e. the neighbours)',
      head: [...Object.keys(r.cpu.percent), 'machine', 'others'],
      rows: [[...Object.values(r.cpu.percent).map((p) => `${fmt(p, 0)} %`), `${fmt(r.cpu.machinePercent, 0)} %`, `${fmt(r.cpu.othersPercent, 0)} %`]],
    },
    {
      title: `Hub memory, MiB, over the window ${windowMin} (the first ${o.warmupShare * 100}% is warm-up); bound ${bound} MiB/hour (a leak of one byte per ACKed message would be ${fmt((r.ackedMessagesPerSecond * 3600) / 2 ** 20, 1)} MiB/hour here); peak RSS ${mib(m.peakRss / 2 ** 20)} MiB`,
      head: ['', 'first', 'last', 'Theil–Sen MiB/hour', 'least squares MiB/hour', '± std error', 'samples', 'second half: Theil–Sen MiB/hour'],
      rows: [
        [`JS heap right after a full GC (every ${o.gcEveryMinutes} min)`, ...slopeCells(m.heapAfterGc), fmt(m.secondHalf.heapAfterGc.medianMiBPerHour, 1)],
        ['RSS right after a full GC', ...slopeCells(m.rssAfterGc), fmt(m.secondHalf.rssAfterGc.medianMiBPerHour, 1)],
        ['  anonymous (JS heap, malloc)', ...slopeCells(m.anonAfterGc), '-'],
        ['  file-backed (code, lmdb map)', ...slopeCells(m.fileAfterGc), '-'],
        [`RSS (every ${o.sampleEveryS} s, GC swings included)`, ...slopeCells(m.rss), fmt(m.secondHalf.rss.medianMiBPerHour, 1)],
        ['  anonymous', ...slopeCells(m.anon), '-'],
        ['  file-backed', ...slopeCells(m.file), '-'],
        [`JS heap used (every ${o.sampleEveryS} s, garbage included)`, ...slopeCells(m.heapUsed), '-'],
      ],
    },
    {
      title: 'Each full GC (the bench\'s, through the inspector): what the hub keeps alive, MiB, and how long the GC call took (long: the hub was starved of CPU or held a backlog)',
      head: ['minute', 'JS heap used', 'JS heap reserved', 'RSS', 'anonymous', 'file-backed', 'GC call ms'],
      rows: m.gc.map((g) => [
        fmt((g.at - r.startedAt) / 60_000, 1), mib(g.heapUsed / 2 ** 20), mib(g.heapTotal / 2 ** 20), mib(g.rss / 2 ** 20),
        mib((g.anon ?? NaN) / 2 ** 20), mib((g.file ?? NaN) / 2 ** 20), fmt(g.gcMs, 0),
      ]),
    },
    {
      title: 'Over time, in sixths of the run: ACKed messages/s, CPU (% of one core; the neighbours are what no process of this run used), hub memory, probe p99 (ms)',
      head: ['minutes', 'ACKed msg/s', 'hub CPU', 'neighbours CPU', 'RSS at the end', 'heap used, highest', '/readyz p99', '/healthz p99', 'bare HTTP server p99'],
      rows: r.slices.map((x) => [
        `${fmt(x.fromS / 60, 1)} to ${fmt(x.toS / 60, 1)}`, fmt(x.ackedPerS), `${fmt(x.hubCpu, 0)} %`, `${fmt(x.othersCpu, 0)} %`,
        mib(x.rssMiB), mib(x.heapUsedMaxMiB), fmt(x.readyzP99, 1), fmt(x.healthzP99, 1), fmt(x.baselineP99, 1),
      ]),
    },
    {
      title: 'Loss: device-sim\'s count against the hub\'s ACKs and InfluxDB',
      head: ['messages sent', 'ACKed (0 / 1)', 'unACKed', 'dropped', 'resent', 'readings sent', 'in InfluxDB', 'lost', 'spool empty after (s)'],
      rows: [[
        fmt(l.sent), `${fmt(l.acked)} (${fmt(l.acks['0'] ?? 0)} / ${fmt(l.acks['1'] ?? 0)})`, fmt(l.unacknowledged), fmt(l.dropped), fmt(l.resent),
        fmt(l.records), fmt(l.stored), fmt(l.lost), l.spoolDrainedS === undefined ? 'not within 600 s' : fmt(l.spoolDrainedS, 1),
      ]],
    },
    {
      title: `Zombies: seconds from a session's open to its drop by the hub (device side, 20 ms polls); bound two ping intervals, ${v.boundMs / 1000} s`,
      head: ['zombie sessions', 'min', 'p50', 'p99', 'max', 'over bound', 'open at the end', 'of those older than the bound'],
      rows: [[fmt(z.count), sec(z.min), sec(z.p50), sec(z.p99), sec(z.max), fmt(z.overBound), fmt(v.zombieOpenAtEnd), fmt(v.zombieOpenAtEndOverBound)]],
    },
    {
      title: 'Live devices: steady ones never dropped, never listed offline while connected',
      head: ['', 'figure'],
      rows: [
        ['steady devices that dropped (device side)', `${fmt(v.steadyDropped)} of ${fmt(v.steady)}${v.steadyDroppedIds.length ? ` (${v.steadyDroppedIds.slice(0, 5).join(', ')})` : ''}`],
        [`steady devices listed offline while connected (API, ${fmt(v.apiPolls)} polls)`, fmt(v.falseOffline)],
        ['hub ping timeouts / zombie sessions ended', `${fmt(v.pingTimeouts)} / ${fmt(z.count)}`],
        ['hub sessions ended, by reason', tally(v.disconnectsByReason)],
        ['API listings offline: zombies, by reason', tally(v.listedOffline.zombie)],
        ['API listings offline: flapping, by reason', tally(v.listedOffline.flapping)],
        ['API listings offline: steady, by reason', tally(v.listedOffline.steady)],
        ['flaps (device-sim) / flapping sessions', `${fmt(v.flaps)} / ${fmt(v.flappingSessions)}`],
        ['device-sim: connects; closes by code; failed connects', `${fmt(v.sim.connects)}; ${tally(v.sim.disconnects)}; ${tally(v.sim.connectFailures)}`],
      ],
    },
    {
      title: `Responsiveness: probe answer time, ms (each probe once a second during the load, by the bench)`,
      head: ['probe', 'probes', 'p50', 'p90', 'p99', 'p999', 'max', 'not 200', 'left out (forced GC)'],
      rows: [
        probeRow('/readyz (event loop and an InfluxDB ping)', r.responsiveness.readyz), probeRow('/healthz (event loop)', r.responsiveness.healthz),
        probeRow('baseline: a bare node:http server on the hub\'s core', r.responsiveness.baseline),
      ],
    },
    targetsTable(r.targets, 'Targets (issue 18)'),
  ];
}

export function soakMarkdown(r: SoakResult, command: string, jsonFile: string, notes: string[]): string {
  return sectionMarkdown({ scenario: 'soak', facts: r, command, jsonFile, tables: soakTables(r), notes });
}
