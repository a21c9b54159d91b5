/**
 * The end-of-run summary: the JSON that --summary writes and runFleet
 * returns, and its human rendering for the terminal.
 */
import type { SimOptions } from './options.js';
import { round, type Stats, type Summary, type Tally } from './stats.js';

export type { ProcessFailure, Summary } from './stats.js';

export type ChaosCounts = { zombies: number; flapping: number; malformed: number };

/** What a summary needs besides the stats; a split fleet's parts send theirs to the parent. */
export type EndState = ChaosCounts & {
  endedAt: number;
  connectedAtEnd: number;
  unacknowledged: number;
};

export function buildSummary(stats: Stats, options: SimOptions, end: EndState): Summary {
  const acked = stats.acks;
  const stored = (acked[0] ?? 0) + (acked[1] ?? 0);
  const latency = stats.latency;
  return {
    devices: options.devices,
    profile: options.profile,
    url: options.url,
    durationSeconds: round((end.endedAt - stats.startedAt) / 1000, 1),
    telemetry: {
      sent: stats.sent,
      records: stats.records,
      resent: stats.resent,
      acknowledged: { ...acked },
      stored,
      dropped: stats.dropped,
      unacknowledged: end.unacknowledged,
    },
    connections: {
      connects: stats.connects,
      connectFailures: { ...stats.connectFailures },
      disconnects: { ...stats.disconnects },
      connectedAtEnd: end.connectedAtEnd,
    },
    commands: {
      byOutcome: { ...stats.commands },
      byName: { ...stats.commandNames },
      desiredApplied: stats.desired,
      reportedSent: stats.reported,
    },
    chaos: {
      zombies: end.zombies,
      flapping: end.flapping,
      malformed: end.malformed,
      flaps: stats.flaps,
      malformedSent: stats.malformedSent,
      clockSkewSeconds: options.clockSkew,
    },
    firmwareErrors: stats.firmwareErrors,
    errors: { ...stats.errors },
    latencyMs: {
      count: latency.count,
      p50: round(latency.quantile(0.5)),
      p99: round(latency.quantile(0.99)),
      max: round(latency.max),
      mean: latency.count ? round(latency.sum / latency.count) : 0,
    },
  };
}

const tally = (t: Tally): string => {
  const entries = Object.entries(t);
  return entries.length ? entries.map(([k, v]) => `${k}: ${v}`).join(', ') : 'none';
};

/** The summary as a few aligned lines; loss is stated in words, not left to arithmetic. */
export function formatSummary(s: Summary): string {
  const t = s.telemetry;
  const failed = s.processes?.failed.length ?? 0;
  const loss = failed > 0
    ? `unknown: ${failed} process(es) failed, what they sent after their last report is not counted; ${t.unacknowledged} known unacknowledged`
    : t.unacknowledged === 0 ? 'zero loss: every message sent was acknowledged or deliberately dropped' : `${t.unacknowledged} messages were never acknowledged`;
  const lines: [string, string][] = [
    ['devices', `${s.devices} (${s.profile}) for ${s.durationSeconds} s against ${s.url}`],
    ['telemetry', `${t.sent} sent (${t.records} records), ${t.resent} resent, ${t.stored} stored, ${t.dropped} dropped`],
    ['ACKs by code', tally(t.acknowledged)],
    ['result', loss],
    ['connections', `${s.connections.connects} connects, ${s.connections.connectedAtEnd} connected at the end`],
    ['failed connects', tally(s.connections.connectFailures)],
    ['disconnects', tally(s.connections.disconnects)],
    ['commands', `${tally(s.commands.byOutcome)}; ${s.commands.desiredApplied} DESIRED applied, ${s.commands.reportedSent} REPORTED sent`],
    ['latency (ms)', `p50 ${s.latencyMs.p50}, p99 ${s.latencyMs.p99}, max ${s.latencyMs.max} over ${s.latencyMs.count} ACKs`],
  ];
  if (s.processes) {
    const { count, failed } = s.processes;
    lines.push(['processes', failed.length === 0 ? `${count}, each ended normally` : `${count}, ${failed.length} FAILED: ` +
      `${failed.map((f) => `#${f.process} (${f.devices}) ${f.exit}`).join('; ')}; figures of a failed one are from its last report`]);
  }
  const c = s.chaos;
  if (c.zombies + c.flapping + c.malformed > 0 || c.clockSkewSeconds !== 0) {
    lines.push(['chaos', `${c.zombies} zombies, ${c.flapping} flapping (${c.flaps} drops), ${c.malformed} malformed (${c.malformedSent} frames), clock skew ${c.clockSkewSeconds} s`]);
  }
  if (s.firmwareErrors > 0 || Object.keys(s.errors).length > 0) lines.push(['errors', `${s.firmwareErrors} firmware (1003/1007/1009); ${tally(s.errors)}`]);
  return ['device-sim summary', ...lines.map(([k, v]) => `  ${k.padEnd(16)} ${v}`)].join('\n');
}
