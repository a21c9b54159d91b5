/** Tables and the BENCHMARKS.md section of the webhooks scenario. */
import { fmt, ratio, sectionMarkdown, type Table } from '../lib/report.js';
import type { WebhooksResult } from './webhooks.js';

/** How the figures were taken: the section's closing paragraph. */
export const WEBHOOKS_NOTES = [
  'How: the hub (built dist, own process, PULSEWIRE_WEBHOOK_ALLOW_PRIVATE=true for the loopback receivers) on CPU 0,',
  'the driver on CPU 1; the receivers (keep-alive node:http servers answering 204) and the flapping devices (a',
  'WebSocket connect then close per cycle: one device.online and one device.offline) run in the bench process,',
  'unpinned. Delivery: every endpoint wants both events of the flapping devices; deliveries/s is every receiver\'s',
  'count over the time from the first cycle to the last delivery. Each endpoint has one request in flight (order',
  'per endpoint), so per-endpoint throughput is one round trip plus the outbox read and delete per event. Cost to',
  'ingest: the driver saturates the hub (window 32 per device) while devices flap at a fixed rate in every phase;',
  '"off" pauses the endpoints (nothing is queued for a paused one), "on" resumes them; phases alternate which goes',
  'first each round; the ratio is of the medians of readings ACKed per second.',
];

export function webhooksTables(r: WebhooksResult): Table[] {
  const o = r.options;
  const d = r.delivery;
  return [
    {
      title: `Delivery: ${o.endpoints} endpoints, ${fmt(d.events)} events (${fmt(o.burst)} connect/disconnect cycles, ${o.loops} at once)`,
      head: ['measure', 'value'],
      rows: [
        ['deliveries received / expected', `${fmt(d.delivered)} / ${fmt(d.expected)}`],
        ['deliveries/s, all endpoints', fmt(d.deliveriesPerSecond)],
        ['deliveries/s per endpoint', fmt(d.perEndpointPerSecond)],
        ['events/s made (recorded into the outboxes)', fmt(d.eventsPerSecondRecorded)],
        ['last delivery after the last event (s)', fmt(d.lagAfterLastEventS, 1)],
        ['hub CPU-s for the phase', fmt(d.hubCpuSeconds, 1)],
        ['failed flap cycles', fmt(d.flapFailures)],
      ],
    },
    {
      title: `Cost to ingest: ${o.devices} devices saturating, batches of ${o.batch}, ${o.seconds} s per phase, devices flapping at ${o.flapPerSecond}/s`,
      head: ['round', 'webhooks', 'readings/s ACKed', 'non-zero ACKs', 'flap cycles', 'deliveries', 'hub CPU-s'],
      rows: r.ingest.phases.map((p) => [p.round, p.webhooks, fmt(p.readingsPerSecond), fmt(p.nonZeroAcks), fmt(p.flapCycles), fmt(p.deliveries), fmt(p.hubCpuSeconds, 1)]),
    },
    {
      title: 'ACK rate, webhooks on against off (medians)',
      head: ['off readings/s', 'on readings/s', 'on / off'],
      rows: [[fmt(r.ingest.offMedian), fmt(r.ingest.onMedian), ratio(r.ingest.onMedian, r.ingest.offMedian)]],
    },
    { title: 'Checks (issue 21)', head: ['check', 'figure', 'met'], rows: r.targets.map((t) => [t.target, t.figure, t.met ? 'met' : 'NOT met']) },
  ];
}

export function webhooksMarkdown(r: WebhooksResult, command: string, jsonFile: string, notes: string[]): string {
  return sectionMarkdown({ scenario: 'webhooks', facts: r, command, jsonFile, tables: webhooksTables(r), notes });
}
