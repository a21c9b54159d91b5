/**
 * The hub's Prometheus metrics. The per-message counts (messages, readings,
 * ACKs: countMessage, countReadings, countAck) are tallied as plain numbers
 * and handed to their prom-client counters at scrape time: prom-client
 * hashes the label set and returns an object on every inc(), which per
 * message was measurable garbage and CPU.
 * Values that other modules already keep (connections, writer statistics)
 * are read at scrape time through `collect`, so the hot path does no extra
 * bookkeeping for them.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { SpoolStats } from '../storage/spool.js';
import type { WriterStats } from '../storage/writer-stats.js';

export type MetricSources = {
  onlineDevices: () => number;
  /** Per-device runtimes held in memory, and forgotten since start (gateway/device-runtime.ts). */
  runtimes?: () => { held: number; forgotten: number };
  /** Device upgrades admitted (gateway/admission.ts): connections open or in their handshake, and handshakes alone. */
  admission?: () => { connections: number; handshakes: number; waiting: number };
  writer: () => WriterStats;
  writeLatency: () => { sumMs: number; count: number };
  spool: () => SpoolStats;
  drainer: () => { retries: number; deadLetterPoints: number };
  /** Series (device, name) known to this process, against PULSEWIRE_MAX_SERIES. */
  series?: () => number;
  /** The failed-login limiters (device handshakes, operator logins): addresses held and evicted since start. */
  authLimiters?: () => { limiter: string; size: number; evicted: number }[];
  /** Dead letters stored now, and dropped past PULSEWIRE_DEAD_LETTERS_MAX since start. */
  deadLetters: () => number;
  deadLettersDropped?: () => number;
  pacer: () => { waiting: number; pacedTotal: number };
  /** The operator live stream (src/live), once its plugin is registered. */
  live?: () => { connections: number; conflating: number; closedTooSlow: number; series: number; devices: number; untracked: number } | undefined;
  /** Outgoing webhooks (src/webhooks), once opened: events queued by this process, and its deliveries while it holds the lease. */
  webhooks?: () => { queued: number; delivered: number; attemptsFailed: number; gaveUp: number; endpointsDelivering: number } | undefined;
  /** Cluster mode (src/cluster); undefined with one process. */
  cluster?: () => { natsConnected: boolean; natsDisconnects: number; nodesAlive: number; eventsPublished: number; eventsReceived: number } | undefined;
};

/** Counts by label value since the last scrape; the counter adds them in its collect(). */
class Tally<K> {
  readonly #counts = new Map<K, number>();

  add(key: K, n: number): void {
    this.#counts.set(key, (this.#counts.get(key) ?? 0) + n);
  }

  /** Hands each non-zero count over and zeroes it (keys stay: the set of labels is small). */
  flush(into: (key: K, n: number) => void): void {
    for (const [key, n] of this.#counts) {
      if (n === 0) continue;
      this.#counts.set(key, 0);
      into(key, n);
    }
  }
}

export class HubMetrics {
  readonly registry = new Registry();
  readonly messagesIn: Counter<'type'>;
  readonly readingsIn: Counter;
  readonly acks: Counter<'code'>;
  readonly frameRejections: Counter<'code'>;
  readonly handshakeRefusals: Counter<'reason'>;
  readonly pingTimeouts: Counter;
  readonly disconnects: Counter<'reason'>;
  readonly takeovers: Counter<'outcome'>;
  readonly httpDeviceRequests: Counter<'method' | 'status'>;
  readonly httpClientErrors: Counter<'reason'>;
  readonly deviceLimitsHit: Counter<'limit'>;
  /** Per spool record (one per event turn with TELEMETRY), not per message. */
  readonly spoolCommits: Histogram;
  readonly #messagesIn = new Tally<string>();
  readonly #readingsIn = new Tally<undefined>();
  readonly #acks = new Tally<number>();

  constructor(sources: MetricSources) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'pulsewire_' });
    const messagesIn = this.#messagesIn;
    const readingsIn = this.#readingsIn;
    const acks = this.#acks;
    this.messagesIn = new Counter({
      name: 'pulsewire_messages_in_total', help: 'Device messages received, by type', labelNames: ['type'], registers,
      collect() { messagesIn.flush((type, n) => this.inc({ type }, n)); },
    });
    this.readingsIn = new Counter({
      name: 'pulsewire_readings_in_total', help: 'SenML records durably accepted', registers,
      collect() { readingsIn.flush((_, n) => this.inc(n)); },
    });
    this.acks = new Counter({
      name: 'pulsewire_acks_total', help: 'ACKs sent, by ACK code', labelNames: ['code'], registers,
      collect() { acks.flush((code, n) => this.inc({ code: String(code) }, n)); },
    });
    this.frameRejections = new Counter({ name: 'pulsewire_frames_rejected_total', help: 'Device frames that closed the connection, by error code', labelNames: ['code'], registers });
    this.handshakeRefusals = new Counter({ name: 'pulsewire_handshake_refusals_total', help: 'WebSocket upgrades refused before the upgrade, by reason (catalog code)', labelNames: ['reason'], registers });
    this.pingTimeouts = new Counter({ name: 'pulsewire_ping_timeouts_total', help: 'Devices terminated for not answering a ping', registers });
    this.disconnects = new Counter({ name: 'pulsewire_disconnects_total', help: 'Device sessions ended, by reason', labelNames: ['reason'], registers });
    this.takeovers = new Counter({ name: 'pulsewire_takeovers_total', help: 'Newer connections of a connected device, by outcome: confirmed (took over at its first pong or frame) or why not', labelNames: ['outcome'], registers });
    this.deviceLimitsHit = new Counter({
      name: 'pulsewire_device_limits_hit_total',
      help: 'Device messages refused for a limit, by limit: message-rate, reading-rate (ACK 4, or close 1008 for REPORTED), names (ACK 5, PULSEWIRE_MAX_NAMES_PER_DEVICE), series (ACK 5, PULSEWIRE_MAX_SERIES)',
      labelNames: ['limit'], registers,
    });
    this.httpClientErrors = new Counter({
      name: 'pulsewire_http_client_errors_total',
      help: 'Connections cut before any route ran, by reason: timeout (PULSEWIRE_HANDSHAKE_TIMEOUT_MS, PULSEWIRE_REQUEST_TIMEOUT_MS), header-too-big (PULSEWIRE_MAX_HEADER_BYTES), malformed, tls-timeout, tls-error',
      labelNames: ['reason'], registers,
    });
    this.httpDeviceRequests = new Counter({ name: 'pulsewire_http_device_requests_total', help: 'HTTP fallback requests of devices (protocol section 8), by method and status', labelNames: ['method', 'status'], registers });
    this.spoolCommits = new Histogram({
      name: 'pulsewire_spool_commit_seconds',
      help: 'Time from writing a spool record until its commit was reported durable (disk sync and event-loop wait included); every ACK 0 of TELEMETRY waits for its record',
      buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2],
      registers,
    });
    new Gauge({
      name: 'pulsewire_devices_online', help: 'Devices with an open connection', registers,
      collect() { this.set(sources.onlineDevices()); },
    });
    const runtimes = () => sources.runtimes?.() ?? { held: 0, forgotten: 0 };
    new Gauge({
      name: 'pulsewire_device_runtimes', help: 'Devices whose per-device state this process holds in memory (online ones and those gone less than PULSEWIRE_DEVICE_FORGET_MS)', registers,
      collect() { this.set(runtimes().held); },
    });
    new Counter({
      name: 'pulsewire_device_runtimes_forgotten_total', help: 'Per-device states forgotten after PULSEWIRE_DEVICE_FORGET_MS without a connection', registers,
      collect() { this.reset(); this.inc(runtimes().forgotten); },
    });
    const admission = () => sources.admission?.() ?? { connections: 0, handshakes: 0, waiting: 0 };
    new Gauge({
      name: 'pulsewire_device_connections', help: 'Device WebSocket connections admitted and not closed, handshakes included (against PULSEWIRE_MAX_DEVICE_CONNECTIONS)', registers,
      collect() { this.set(admission().connections); },
    });
    new Gauge({
      name: 'pulsewire_device_handshakes', help: 'Device upgrades in progress (against PULSEWIRE_MAX_HANDSHAKES)', registers,
      collect() { this.set(admission().handshakes); },
    });
    new Gauge({
      name: 'pulsewire_device_handshakes_waiting', help: 'Device upgrades waiting for their turn in the admission queue (against PULSEWIRE_ADMISSION_QUEUE)', registers,
      collect() { this.set(admission().waiting); },
    });
    const authLimiters = () => sources.authLimiters?.() ?? [];
    new Gauge({
      name: 'pulsewire_auth_limiter_addresses', help: 'Addresses the failed-login limiter holds, by limiter (device, operator), against PULSEWIRE_AUTH_MAX_ADDRESSES', labelNames: ['limiter'], registers,
      collect() { for (const l of authLimiters()) this.set({ limiter: l.limiter }, l.size); },
    });
    new Counter({
      name: 'pulsewire_auth_limiter_evictions_total', help: 'Addresses the failed-login limiter forgot while still counting or blocking them, to stay within PULSEWIRE_AUTH_MAX_ADDRESSES', labelNames: ['limiter'], registers,
      collect() { this.reset(); for (const l of authLimiters()) this.inc({ limiter: l.limiter }, l.evicted); },
    });
    // The writer keeps its own counters; they are copied at scrape time, so these stay Prometheus counters.
    const writerCounter = (name: string, help: string, read: (s: WriterStats) => number) =>
      new Counter({ name, help, registers, collect() { this.reset(); this.inc(read(sources.writer())); } });
    writerCounter('pulsewire_write_batches_total', 'InfluxDB write requests (batches) sent, retries included', (s) => s.batches);
    writerCounter('pulsewire_points_written_total', 'Points confirmed by InfluxDB', (s) => s.pointsWritten);
    writerCounter('pulsewire_write_errors_total', 'InfluxDB write requests that failed', (s) => s.writeErrors);
    writerCounter('pulsewire_write_retries_total', 'InfluxDB write retries', (s) => s.retries);
    new Gauge({
      name: 'pulsewire_write_queue_points', help: 'Points waiting for a write request', registers,
      collect() { this.set(sources.writer().queuedPoints); },
    });
    // The spool: what is ACKed but not yet in InfluxDB, and whether devices are being told to wait.
    // `aggregator`: how a hub of several workers adds this up (hub-wide /metrics); sum unless said.
    const gauge = (name: string, help: string, read: () => number, aggregator: 'sum' | 'max' | 'min' = 'sum') =>
      new Gauge({ name, help, registers, aggregator, collect() { this.set(read()); } });
    gauge('pulsewire_spool_entries', 'TELEMETRY messages in the spool, not yet confirmed by InfluxDB', () => sources.spool().entries);
    gauge('pulsewire_spool_readings', 'Readings (points) in the spool', () => sources.spool().points);
    gauge('pulsewire_spool_bytes', 'Bytes the spool holds, against PULSEWIRE_SPOOL_MAX_BYTES', () => sources.spool().bytes);
    gauge('pulsewire_spool_max_bytes', 'PULSEWIRE_SPOOL_MAX_BYTES', () => sources.spool().maxBytes);
    gauge('pulsewire_spool_full', '1 while the spool is full and TELEMETRY gets ACK 4', () => (sources.spool().full ? 1 : 0), 'max');
    gauge('pulsewire_spool_oldest_age_seconds', 'Age of the oldest spooled reading (0 when empty)', () => sources.spool().oldestAgeSeconds, 'max');
    gauge('pulsewire_series', 'Series (distinct device and name pairs) this process stores, against PULSEWIRE_MAX_SERIES', () => sources.series?.() ?? 0);
    gauge('pulsewire_dead_letters', 'Dead letters stored (points InfluxDB refused), see GET /v1/dead-letters', () => sources.deadLetters());
    writerCounter('pulsewire_dead_letters_dropped_total', 'Dead letters deleted since start to keep PULSEWIRE_DEAD_LETTERS_MAX (the oldest first)', () => sources.deadLettersDropped?.() ?? 0);
    writerCounter('pulsewire_dead_letter_points_total', 'Points moved to the dead letters since start', () => sources.drainer().deadLetterPoints);
    writerCounter('pulsewire_spool_drain_retries_total', 'Spool drain rounds that found InfluxDB unavailable and backed off', () => sources.drainer().retries);
    new Gauge({
      name: 'pulsewire_write_latency_ms_avg', help: 'Mean InfluxDB write request latency since start, milliseconds', registers,
      collect() {
        const { sumMs, count } = sources.writeLatency();
        this.set(count === 0 ? 0 : sumMs / count);
      },
    });
    new Gauge({
      name: 'pulsewire_acks_held', help: 'ACKs held back while InfluxDB delivery catches up with ingest', registers,
      collect() { this.set(sources.pacer().waiting); },
    });
    const live = () => sources.live?.() ?? { connections: 0, conflating: 0, closedTooSlow: 0, series: 0, devices: 0, untracked: 0 };
    gauge('pulsewire_live_snapshot_series', 'Series whose latest value the live snapshot keeps, against PULSEWIRE_LIVE_MAX_SERIES', () => live().series);
    gauge('pulsewire_live_snapshot_devices', 'Devices in the live snapshot\'s status map (every registered device: bounded by the registry)', () => live().devices);
    new Counter({
      name: 'pulsewire_live_untracked_readings_total', help: 'Readings of series beyond PULSEWIRE_LIVE_MAX_SERIES: streamed live, not kept for snapshots', registers,
      collect() { this.reset(); this.inc(live().untracked); },
    });
    gauge('pulsewire_live_connections', 'Operator live-stream connections (WebSocket and SSE)', () => live().connections);
    gauge('pulsewire_live_conflating', 'Live-stream connections behind PULSEWIRE_LIVE_CONFLATE_BYTES, getting only latest values', () => live().conflating);
    new Counter({
      name: 'pulsewire_live_closed_too_slow_total', help: 'Live-stream connections closed with 1013 for not keeping up', registers,
      collect() { this.reset(); this.inc(live().closedTooSlow); },
    });
    new Counter({
      name: 'pulsewire_acks_paced_total', help: 'ACKs that were held back to let delivery catch up', registers,
      collect() { this.reset(); this.inc(sources.pacer().pacedTotal); },
    });
    const webhooks = () => sources.webhooks?.() ?? { queued: 0, delivered: 0, attemptsFailed: 0, gaveUp: 0, endpointsDelivering: 0 };
    gauge('pulsewire_webhook_endpoints_delivering', 'Webhook endpoints this process delivers to now (all active ones on the holder of the webhooks lease, else 0)', () => webhooks().endpointsDelivering);
    for (const [name, help, read] of [
      ['pulsewire_webhook_events_queued_total', 'Webhook events this process put in an endpoint\'s outbox (one per event and endpoint)', () => webhooks().queued],
      ['pulsewire_webhook_deliveries_total', 'Webhook events delivered (answered 2xx) by this process', () => webhooks().delivered],
      ['pulsewire_webhook_attempts_failed_total', 'Webhook delivery attempts that failed (retried later)', () => webhooks().attemptsFailed],
      ['pulsewire_webhook_events_failed_total', "Webhook events moved to their endpoint's failed list (retries ran out)", () => webhooks().gaveUp],
    ] as const) {
      new Counter({ name, help, registers, collect() { this.reset(); this.inc(read()); } });
    }
    if (!sources.cluster) return;
    const cluster = () => sources.cluster?.() ?? { natsConnected: false, natsDisconnects: 0, nodesAlive: 0, eventsPublished: 0, eventsReceived: 0 };
    gauge('pulsewire_nats_connected', 'Cluster mode: 1 while this node is connected to NATS (0: shared state waits; devices and spool carry on)', () => (cluster().natsConnected ? 1 : 0), 'min');
    gauge('pulsewire_cluster_nodes_alive', 'Cluster mode: nodes this node sees beating, itself included', () => cluster().nodesAlive, 'max');
    for (const [name, help, read] of [
      ['pulsewire_nats_disconnects_total', 'Cluster mode: NATS connections lost since start', () => cluster().natsDisconnects],
      ['pulsewire_cluster_events_published_total', 'Cluster mode: events and readings this node published to the other nodes', () => cluster().eventsPublished],
      ['pulsewire_cluster_events_received_total', 'Cluster mode: events and readings received from the other nodes', () => cluster().eventsReceived],
    ] as const) {
      new Counter({ name, help, registers, collect() { this.reset(); this.inc(read()); } });
    }
  }

  /** A device message of this type (label value) received; counted at the next scrape. */
  countMessage(type: string): void {
    this.#messagesIn.add(type, 1);
  }

  /** Readings durably accepted; counted at the next scrape. */
  countReadings(n: number): void {
    this.#readingsIn.add(undefined, n);
  }

  /** An ACK sent with this code; counted at the next scrape. */
  countAck(code: number): void {
    this.#acks.add(code, 1);
  }
}
