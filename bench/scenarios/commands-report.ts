/** Tables and the BENCHMARKS.md section of the commands scenario. */
import type { LatencyFigures } from '../lib/latency-figures.js';
import { fmt, sectionMarkdown, type Table, targetsTable } from '../lib/report.js';
import { median } from '../lib/proc.js';
import { byRate, lostCommands, P99_BOUND_MS, settledFromS, sustained, type CommandsResult, type PhaseFigures } from './commands.js';

/** How the figures were taken: the section's closing paragraph. */
export const COMMANDS_NOTES = [
  'How: the hub (built dist, own process, managed influxd, fresh data dir, ping every 25 s) and the command relay',
  '(bench/servers/command-relay.ts) run side by side on the measured core, each holding its own device-sim fleet',
  '(bench/lib/fleet-worker.ts, one process per fleet on the load core, ramp 600 connections/s, reconnect on, practically no',
  'telemetry) whose devices answer the command `echo {delayMs}` with RESULT 1 (device-sim/commands.ts). The relay is the',
  'plumbing alone: the same WebSocket setup and ping sweep, and an HTTP endpoint on the same port that writes the COMMAND to',
  'the device\'s socket at once and answers on its RESULT, in the hub\'s JSON shape; no auth, registry, queue, storage, timers',
  'or events. A load process (bench/lib/command-load.ts, load core) issues `POST /v1/devices/:id/commands?wait=30` (operator',
  'token for the hub), open-loop at the rate (what is due every 5 ms, whatever is still open), each to a device picked at',
  'random, over a keep-alive pool of up to 1,000 sockets (node:http Agent). Phases alternate hub, relay, at each rate, round',
  'after round, so a neighbour\'s burst on this shared machine lands on one phase; ratios are per round, then the median.',
  'Round trip = performance.now() from the call to the end of its answer; "to sent" = the answer\'s sentAt minus the wall',
  'clock at the call, "sent to final" = completedAt - sentAt (millisecond clocks of the same host). Commands issued in the',
  'first 2 s of a phase are counted but not in the percentiles; "p99 from 6 s" leaves out 4 s more (where a step from the',
  'previous phase\'s rate shows), for context only: the target is on the whole phase. "Not succeeded" = issued - answers',
  'with status succeeded:',
  'other final states, 202 (the wait ended), HTTP errors, socket errors (a request times out 60 s after it got its socket)',
  'and calls never answered; calls still waiting for a pool socket when the drain (65 s) ends are "never sent", shown but',
  'not counted as the subject\'s loss (the loss target is then not met either: the run could not offer the rate). CPU % is the subject\'s',
  'utime+stime over the phase (one core = 100 %), CPU ms per command that time over the commands issued; RSS from',
  '/proc/PID/status every 0.5 s. "Load lag" is how late the load process issued commands against its schedule and "pool',
  'wait" how long a request waited for a socket: when either is large, the load generator (starved of its core) is part of',
  'the figures of that phase, for hub and relay alike.',
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
    [...others, ...(l.notFinal ? [`202 ${l.notFinal}`] : []), ...errors, ...(l.requestErrors ? [`socket ${l.requestErrors}`] : []), ...(l.unanswered ? [`unanswered ${l.unanswered}`] : []), ...(l.neverSent ? [`never sent ${l.neverSent}`] : [])].join(', ') || '-',
    `${sustained(p).toFixed(3)} x`, lat(l.roundTripMs), ms(l.roundTripMs.p999), ms(l.roundTripSettledMs.p99), `${ms(l.toSentMs.p50)} / ${ms(l.toSentMs.p99)}`, `${ms(l.sentToFinalMs.p50)} / ${ms(l.sentToFinalMs.p99)}`,
    fmt(p.cpuPercent), fmt(p.cpuMsPerCommand, 2), `${mib(p.rssMedianBytes)} (${mib(p.rssPeakBytes)})`, `${fmt(p.connectedAfter)} / ${fmt(p.disconnects)}`,
    `${ms(l.issueLagMs.p99)} / ${ms(l.poolWaitMs.p99)}`,
  ];
}

const x = (v: number) => (Number.isFinite(v) ? `${v.toFixed(2)} x` : 'n/a');

export function commandsTables(r: CommandsResult): Table[] {
  const o = r.options;
  const phases = [...r.hub.phases.map((p) => ({ name: 'hub', p })), ...r.relay.phases.map((p) => ({ name: 'relay', p }))]
    .sort((a, b) => a.p.round - b.p.round || o.rates.indexOf(a.p.rate) - o.rates.indexOf(b.p.rate));
  const ratios = (f: (p: PhaseFigures) => number) => (rounds: ReturnType<typeof byRate>[number]['rounds']) =>
    rounds.map(({ h, b }) => (b ? f(h) / f(b) : NaN));
  const cell = (values: number[]) => `${x(median(values))} (${values.map((v) => v.toFixed(1)).join(', ')})`;
  return [
    {
      title: `Command round trip with ${fmt(o.devices)} devices connected to each, ${o.phaseSeconds} s per phase, rounds in the order run, RESULT ${o.resultDelayMs} ms after the COMMAND; times in ms`,
      head: ['round: subject, rate', 'issued', 'succeeded', 'not succeeded (of those sent)', 'why (and never sent)', 'answered in window / offered', 'round trip p50 / p99 / max', 'p999', `p99 from ${settledFromS(r)} s`, 'to sent p50 / p99', 'sent to final p50 / p99', 'CPU %', 'CPU ms per command', 'RSS MiB median (peak)', 'devices connected after / disconnects', 'load lag p99 / pool wait p99'],
      rows: phases.map(({ name, p }) => phaseRow(`${p.round}: ${name} ${fmt(p.rate)}/s`, p)),
    },
    {
      title: 'Hub / relay, same rate, same round: median of the rounds (each round)',
      head: ['rate', 'round trip p50', 'round trip p99', 'CPU ms per command', 'RSS (median)'],
      rows: byRate(r).map(({ rate, rounds }) => [
        `${fmt(rate)}/s`, cell(ratios((p) => p.load.roundTripMs.p50)(rounds)), cell(ratios((p) => p.load.roundTripMs.p99)(rounds)),
        cell(ratios((p) => p.cpuMsPerCommand)(rounds)), cell(ratios((p) => p.rssMedianBytes)(rounds)),
      ]),
    },
    {
      title: 'Connecting the fleets (one after the other, before the rounds)',
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
