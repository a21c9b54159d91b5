/** Tables and the BENCHMARKS.md section of the commands scenario. */
import type { LatencyFigures } from '../lib/latency-figures.js';
import { fmt, ratio, sectionMarkdown, type Table, targetsTable } from '../lib/report.js';
import { lostCommands, P99_BOUND_MS, sustained, type CommandsResult, type PhaseFigures, type SubjectFigures } from './commands.js';

/** How the figures were taken: the section's closing paragraph. */
export const COMMANDS_NOTES = [
  'How: the hub (built dist, own process pinned to CPU 0, managed influxd, fresh data dir, ping every 25 s) holds a device-sim',
  'fleet (bench/lib/fleet-worker.ts, own process on CPU 1, ramp 600 connections/s, reconnect on, practically no telemetry)',
  'whose devices answer the command `echo {delayMs}` with RESULT 1 (device-sim/commands.ts). A load process',
  '(bench/lib/command-load.ts, CPU 1) then issues `POST /v1/devices/:id/commands?wait=30` with the operator token, open-loop at',
  'the rate (what is due every 5 ms, whatever is still open), to a device picked at random, over a keep-alive pool of 256',
  'sockets (node:http Agent). Round trip = performance.now() from the call to the end of its answer; "to sent" = the answer\'s',
  'sentAt minus the wall clock at the call, "sent to final" = completedAt - sentAt (both millisecond clocks of the same host).',
  'Commands issued in the first 2 s of a phase are counted but not in the percentiles. "Not succeeded" = issued - answers',
  'with status succeeded: other final states, 202 (the wait ended), HTTP errors, socket errors and calls never answered.',
  'Baseline: the same fleet, load and rates against the command relay (bench/servers/command-relay.ts): the same WebSocket',
  'setup and ping sweep, and an HTTP endpoint on the same port that writes the COMMAND to the device\'s socket at once and',
  'answers on its RESULT, in the hub\'s JSON shape; no auth, registry, queue, storage, timers or events. CPU % is the',
  'subject\'s utime+stime over the phase (one core = 100 %); RSS from /proc/PID/status every 0.5 s.',
];

const ms = (x: number) => fmt(x, 1);
const mib = (b: number) => fmt(b / 2 ** 20, 0);
const lat = (l: LatencyFigures) => `${ms(l.p50)} / ${ms(l.p99)} / ${ms(l.max)}`;

function phaseRow(name: string, p: PhaseFigures): Array<string | number> {
  const l = p.load;
  const others = Object.entries(l.finals).filter(([s]) => s !== 'succeeded').map(([s, n]) => `${s} ${n}`);
  const errors = Object.entries(l.httpErrors).map(([c, n]) => `HTTP ${c}: ${n}`);
  return [
    name, fmt(l.issued), fmt(l.finals.succeeded ?? 0), fmt(lostCommands(l)),
    [...others, ...(l.notFinal ? [`202 ${l.notFinal}`] : []), ...errors, ...(l.requestErrors ? [`socket ${l.requestErrors}`] : []), ...(l.unanswered ? [`unanswered ${l.unanswered}`] : [])].join(', ') || '-',
    `${sustained(p).toFixed(3)} x`, lat(l.roundTripMs), ms(l.roundTripMs.p999), `${ms(l.toSentMs.p50)} / ${ms(l.toSentMs.p99)}`, `${ms(l.sentToFinalMs.p50)} / ${ms(l.sentToFinalMs.p99)}`,
    fmt(p.cpuPercent), `${mib(p.rssMedianBytes)} (${mib(p.rssPeakBytes)})`, `${fmt(p.connectedAfter)} / ${fmt(p.disconnects)}`,
  ];
}

export function commandsTables(r: CommandsResult): Table[] {
  const o = r.options;
  const rows = (name: string, s: SubjectFigures) => s.phases.map((p) => phaseRow(`${name} ${fmt(p.rate)}/s`, p));
  const pairs = r.hub.phases.map((h, i) => ({ h, b: r.relay.phases[i]! })).filter(({ b }) => b !== undefined);
  return [
    {
      title: `Command round trip with ${fmt(o.devices)} connected devices, ${o.phaseSeconds} s per rate, RESULT ${o.resultDelayMs} ms after the COMMAND; ms`,
      head: ['subject, rate', 'issued', 'succeeded', 'not succeeded', 'of which', 'answered in window / offered', 'round trip p50 / p99 / max', 'p999', 'to sent p50 / p99', 'sent to final p50 / p99', 'CPU %', 'RSS MiB median (peak)', 'devices connected after / disconnects'],
      rows: [...rows('hub', r.hub), ...rows('relay', r.relay)],
    },
    {
      title: 'Hub / relay, same rate, same run',
      head: ['rate', 'round trip p50', 'round trip p99', 'CPU', 'RSS (median)'],
      rows: pairs.map(({ h, b }) => [
        `${fmt(h.rate)}/s`, ratio(h.load.roundTripMs.p50, b.load.roundTripMs.p50), ratio(h.load.roundTripMs.p99, b.load.roundTripMs.p99),
        ratio(h.cpuPercent, b.cpuPercent), ratio(h.rssMedianBytes, b.rssMedianBytes),
      ]),
    },
    {
      title: 'Connecting the fleet',
      head: ['subject', 'devices connected', 'ramp (s)', 'failed handshakes (retried)', 'RSS with the fleet, idle (MiB)'],
      rows: ([['hub', r.hub], ['relay', r.relay]] as const).map(([name, f]) => [name, fmt(f.connected), fmt(f.rampS, 1), fmt(f.connectFailures), mib(f.rssHeldBytes)]),
    },
    targetsTable(r.targets, 'Targets (issue 6)'),
  ];
}

/** Why these targets: stated once in the section. */
const TARGET_REASONS = [
  `Why these targets: the issue names the rates, not bounds. Zero loss is the protocol's promise (every command reaches a`,
  `final state the operator can see). ${P99_BOUND_MS} ms p99 is what a person clicking a button reads as immediate, and at 1,000/s it`,
  'keeps about 100 commands in flight; the relay ratio says how much of it is the hub\'s own work rather than the machine.',
];

export function commandsMarkdown(r: CommandsResult, command: string, jsonFile: string, notes: string[]): string {
  return sectionMarkdown({ scenario: 'commands', facts: r, lines: [TARGET_REASONS.join('\n')], command, jsonFile, tables: commandsTables(r), notes });
}
