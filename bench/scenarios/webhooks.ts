/**
 * Scenario `webhooks` (issue 21): what outgoing webhooks deliver and what they
 * cost ingest.
 * - Delivery: 10 endpoints (`--endpoints`), each a keep-alive node:http
 *   receiver on loopback answering 204, all subscribed to device.online and
 *   device.offline; `--burst` device connect/disconnect cycles as fast as
 *   `--loops` loops go make two events each, so 10 x 2 x burst deliveries.
 *   Reported: deliveries/s (all endpoints, and per endpoint) from the first
 *   cycle to the last delivery, how far delivery lagged the events, and
 *   whether every event reached every endpoint.
 * - Cost to ingest: the driver saturates the hub with TELEMETRY while devices
 *   flap at `--rate` cycles/s (2 events each), with the 10 endpoints paused
 *   (off: nothing is queued for a paused endpoint) and resumed (on), in
 *   alternating order over `--rounds` rounds of `--seconds`; the ACK rate
 *   with webhooks on against off, as a ratio of medians.
 * The hub is the built dist in its own process on CPU 0, the driver on CPU
 * 1; the receivers and the flapping devices run in this process, unpinned.
 */
import type { ConnectResult, RunResult } from '../lib/driver.js';
import { flap } from '../lib/flapper.js';
import { BENCH_ENROLLMENT_KEY, BENCH_OPERATOR_TOKEN, startHubProcess, type HubProcess } from '../lib/hub-process.js';
import { describeMachine } from '../lib/machine.js';
import { cpuSeconds, median, pin, placement, until } from '../lib/proc.js';
import type { ResultHead, Target } from '../lib/report.js';
import { startReceivers, type Receivers } from '../lib/webhook-receivers.js';
import { startDriver } from './ceilings.js';

export type WebhooksOptions = {
  endpoints: number;
  /** Connect/disconnect cycles of the delivery phase (two events each). */
  burst: number;
  /** Concurrent flapping devices. */
  loops: number;
  /** Ingest devices driven by the driver, and records per message. */
  devices: number;
  batch: number;
  /** Messages in flight per ingest device (at most the protocol's 32). */
  window: number;
  /** Each ingest phase. */
  seconds: number;
  /** Rounds of (off, on) ingest phases, alternating which goes first. */
  rounds: number;
  /** Flap cycles per second during the ingest phases (2 events each, to every endpoint when on). */
  flapPerSecond: number;
  /** Longest wait for the deliveries to arrive. */
  deliveryTimeoutS: number;
  pin: boolean;
  hubEntry?: string[];
  log: (line: string) => void;
};

export const WEBHOOKS_DEFAULTS: WebhooksOptions = {
  endpoints: 10, burst: 1000, loops: 20, devices: 1000, batch: 10, window: 32, seconds: 20, rounds: 2, flapPerSecond: 50, deliveryTimeoutS: 300, pin: true, log: () => {},
};

export type IngestPhase = {
  webhooks: 'off' | 'on';
  round: number;
  ackedMessagesPerSecond: number;
  readingsPerSecond: number;
  nonZeroAcks: number;
  /** ACKs by code. */
  acks: Record<string, number>;
  flapCycles: number;
  deliveries: number;
  hubCpuSeconds: number;
};

export type WebhooksResult = ResultHead<'webhooks', WebhooksOptions> & {
  delivery: {
    events: number;
    expected: number;
    delivered: number;
    perEndpoint: number[];
    seconds: number;
    deliveriesPerSecond: number;
    perEndpointPerSecond: number;
    eventsPerSecondRecorded: number;
    /** From the last event made to the last delivery. */
    lagAfterLastEventS: number;
    flapFailures: number;
    hubCpuSeconds: number;
  };
  ingest: { phases: IngestPhase[]; offMedian: number; onMedian: number; ratio: number };
};

export async function runWebhooks(options: Partial<WebhooksOptions> = {}): Promise<WebhooksResult> {
  const o: WebhooksOptions = { ...WEBHOOKS_DEFAULTS, ...options };
  const place = placement(o.pin);
  const machine = describeMachine();
  o.log(`webhooks: ${o.endpoints} endpoints, ${o.burst} flap cycles (${o.loops} loops); ingest ${o.devices} devices x ${o.seconds} s, ${o.rounds} rounds off/on, flapping ${o.flapPerSecond}/s; ${place.note}`);
  const receivers = await startReceivers(o.endpoints);
  const hub = await startHubProcess({ ...(o.hubEntry ? { entry: o.hubEntry } : {}), env: { PULSEWIRE_WEBHOOK_ALLOW_PRIVATE: 'true' } });
  const driver = startDriver(place);
  try {
    pin(hub.pid, place.subject, place);
    const ids: string[] = [];
    for (const url of receivers.urls) {
      const res = await api(hub, 'POST', '/v1/webhooks', { url, events: ['device.online', 'device.offline'], devicePrefix: 'flap-' });
      if (res.status !== 201) throw new Error(`webhook registration answered ${res.status}: ${JSON.stringify(res.body)}`);
      ids.push(res.body.id);
    }

    // Delivery.
    const cpu0 = cpuSeconds(hub.pid);
    const t0 = performance.now();
    const burst = flap({ url: hub.deviceUrl, enrollmentKey: BENCH_ENROLLMENT_KEY, prefix: 'flap-', loops: o.loops, totalCycles: o.burst });
    await burst.done;
    const flapEnd = performance.now();
    const events = 2 * burst.cycles;
    const expected = events * o.endpoints;
    await until(() => receivers.total() >= expected, o.deliveryTimeoutS * 1000, 50);
    await until(async () => (await queued(hub)) === 0, 10_000, 100);
    const seconds = (receivers.lastAt() - t0) / 1000;
    const delivered = receivers.total();
    const delivery = {
      events, expected, delivered, perEndpoint: receivers.counts(), seconds,
      deliveriesPerSecond: delivered / seconds, perEndpointPerSecond: delivered / o.endpoints / seconds,
      eventsPerSecondRecorded: events / ((flapEnd - t0) / 1000), lagAfterLastEventS: Math.max(0, (receivers.lastAt() - flapEnd) / 1000),
      flapFailures: burst.failures, hubCpuSeconds: cpuSeconds(hub.pid) - cpu0,
    };
    o.log(`  delivery: ${delivered} of ${expected} in ${seconds.toFixed(1)} s, ${delivery.deliveriesPerSecond.toFixed(0)}/s (${delivery.perEndpointPerSecond.toFixed(0)}/s per endpoint)`);

    // Cost to ingest.
    const connected = await driver.call<ConnectResult>('connect', { url: hub.deviceUrl, devices: o.devices, prefix: 'bench-', enrollmentKey: BENCH_ENROLLMENT_KEY });
    o.log(`  ${connected.connected} ingest devices connected in ${connected.seconds.toFixed(1)} s`);
    const phases: IngestPhase[] = [];
    for (let round = 1; round <= o.rounds; round++) {
      const order: Array<'off' | 'on'> = round % 2 === 1 ? ['off', 'on'] : ['on', 'off'];
      for (const mode of order) {
        // Delivered before the endpoints are paused: a paused endpoint keeps its queue, and the wait would last its timeout.
        await until(async () => (await queued(hub)) === 0, o.deliveryTimeoutS * 1000, 100);
        for (const id of ids) await api(hub, 'POST', `/v1/webhooks/${id}/${mode === 'on' ? 'resume' : 'pause'}`);
        const before = receivers.total();
        const cpu = cpuSeconds(hub.pid);
        const flapping = flap({ url: hub.deviceUrl, enrollmentKey: BENCH_ENROLLMENT_KEY, prefix: 'flap-', loops: o.loops, cyclesPerSecond: o.flapPerSecond });
        const run = await driver.call<RunResult>('run', { mode: 'saturate', batch: o.batch, window: o.window, seconds: o.seconds, names: `w${round}${mode}`, drainMs: 30_000 });
        await flapping.stop();
        const phase: IngestPhase = {
          webhooks: mode, round, ackedMessagesPerSecond: run.ackedInWindow / run.seconds, readingsPerSecond: (run.ackedInWindow * o.batch) / run.seconds,
          nonZeroAcks: Object.entries(run.acks).filter(([code]) => code !== '0').reduce((n, [, c]) => n + c, 0),
          acks: run.acks, flapCycles: flapping.cycles, deliveries: receivers.total() - before, hubCpuSeconds: cpuSeconds(hub.pid) - cpu,
        };
        phases.push(phase);
        o.log(`  round ${round} webhooks ${mode}: ${phase.readingsPerSecond.toFixed(0)} readings/s ACKed, ${phase.flapCycles} flap cycles, ${phase.deliveries} deliveries during the phase`);
      }
    }
    await until(async () => (await queued(hub)) === 0, o.deliveryTimeoutS * 1000, 100);
    await driver.call('close');
    const offMedian = median(phases.filter((p) => p.webhooks === 'off').map((p) => p.readingsPerSecond));
    const onMedian = median(phases.filter((p) => p.webhooks === 'on').map((p) => p.readingsPerSecond));
    const result: WebhooksResult = {
      scenario: 'webhooks', machine, placement: place, options: (({ log: _l, hubEntry: _h, ...rest }) => rest)(o),
      delivery, ingest: { phases, offMedian, onMedian, ratio: offMedian > 0 ? onMedian / offMedian : 0 }, targets: [],
    };
    result.targets = webhooksTargets(result);
    return result;
  } finally {
    await driver.close();
    await hub.stop();
    await receivers.close();
  }
}

export function webhooksTargets(r: WebhooksResult): Target[] {
  return [
    {
      target: `every event delivered to each of the ${r.options.endpoints} endpoints`,
      figure: `${r.delivery.delivered} of ${r.delivery.expected} deliveries, ${r.delivery.deliveriesPerSecond.toFixed(0)}/s`,
      met: r.delivery.delivered === r.delivery.expected,
    },
    {
      // The issue asks for the figure; 0.9 is this scenario's own bound, not the issue's.
      target: 'ingest ACK rate with webhooks on vs off (bound chosen here: at least 0.9)',
      figure: `${r.ingest.ratio.toFixed(2)} x (${r.ingest.onMedian.toFixed(0)} vs ${r.ingest.offMedian.toFixed(0)} readings/s)`,
      met: r.ingest.ratio >= 0.9,
    },
  ];
}

async function api(hub: HubProcess, method: string, route: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${hub.baseUrl}${route}`, {
    method, headers: { authorization: `Bearer ${BENCH_OPERATOR_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** Events waiting in every endpoint's outbox. */
async function queued(hub: HubProcess): Promise<number> {
  const res = await api(hub, 'GET', '/v1/webhooks');
  return (res.body.webhooks as Array<{ queued: number }>).reduce((n, w) => n + w.queued, 0);
}
