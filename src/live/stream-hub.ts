/**
 * The live stream's centre: subscribes to the bus once for all operators,
 * keeps the snapshot state (device statuses, latest value per series), and
 * every tick hands that tick's events to each connection. One timer and one
 * conversion per event serve every dashboard, so ten dashboards cost little
 * more than one, and the device path only pays a Map lookup per reading.
 */
import { randomInt } from 'node:crypto';
import type { AlertView } from '../alerts/types.js';
import type { EventBus } from '../events/bus.js';
import type { BackpressureLimits, LiveTransport } from './connection.js';
import { LiveConnection } from './connection.js';
import { LiveFilter } from './filter.js';
import { batchSize, emptyBatch, eventsFrame, toLiveReading, type LiveBatch, type LiveDeviceStatus, type LiveReading } from './types.js';
import { LatestValues, StatusMap, type StatusSource } from './snapshot-state.js';

export type LiveHubOptions = BackpressureLimits & {
  tickMs: number;
  /** Resume window for SSE: at most this many ticks, holding at most `ringItems` events. */
  ringTicks: number;
  ringItems: number;
  maxSeries: number;
  now?: () => number;
  /** Identifies this run of the hub in event ids (default: random per process); tests fix it. */
  boot?: number;
};

/**
 * Cluster mode (cluster/live-peers.ts, cluster/bus-bridge.ts): other nodes'
 * latest readings for a snapshot, and which devices' readings this node must
 * receive for its connections' filters.
 */
export interface LivePeers {
  gather(filter: LiveFilter): Promise<LiveReading[]>;
  setInterest(interest: { all: boolean; devices: ReadonlySet<string> }): void;
}

export type LiveStats = {
  connections: number;
  conflating: number;
  maxBufferedBytes: number;
  /** Connections closed with 1013 since start. */
  closedTooSlow: number;
  seq: number;
  series: number;
  devices: number;
  /** Readings of series beyond the snapshot's bound since start: streamed, not remembered. */
  untracked: number;
};

export class LiveHub {
  readonly options: LiveHubOptions;
  /**
   * Which run of the hub a seq belongs to: seq starts again at 0 on every
   * start, so an SSE client resuming with an id from before a restart must
   * not be taken for one a few ticks behind (it would skip what it missed and
   * get no snapshot). Event ids are `<boot>.<seq>`. Random, not the start
   * time: two workers of one hub (or two nodes) start in the same millisecond,
   * and a resume that lands on another one must not be taken for its own.
   */
  readonly boot: number;
  readonly #latest: LatestValues;
  readonly #status = new StatusMap();
  readonly #ring: EventRing;
  readonly #connections = new Set<LiveConnection>();
  readonly #unsubscribe: (() => void)[] = [];
  readonly #now: () => number;
  #batch = emptyBatch();
  #seq = 0;
  #closedTooSlow = 0;
  #timer: NodeJS.Timeout | undefined;
  #peers: LivePeers | undefined;
  #firingAlerts: () => readonly AlertView[] = () => [];
  /** The seq at which the last connection went; see #streaming. Before the first came, no client holds an id of this run to resume from. */
  #unwatchedSince: number;
  /** Readings are being left out of the batches (#skipReadings). */
  #skipping = false;
  #stopped = false;

  constructor(options: LiveHubOptions) {
    this.options = options;
    this.#latest = new LatestValues(options.maxSeries);
    this.#ring = new EventRing(options.ringTicks, options.ringItems);
    this.#unwatchedSince = -options.ringTicks;
    this.#now = options.now ?? Date.now;
    this.boot = options.boot ?? randomInt(1, 2 ** 48);
  }

  /** The SSE event id of `seq` in this run of the hub. */
  eventId(seq: number): string {
    return `${this.boot}.${seq}`;
  }

  /** The seq an event id names, when it is from this run of the hub; undefined for another run's id or garbage. */
  resumeSeq(eventId: string | undefined): number | undefined {
    const match = /^(\d{1,15})\.(\d{1,15})$/.exec(eventId ?? '');
    if (!match || Number(match[1]) !== this.boot) return undefined;
    return Number(match[2]);
  }

  /** Listens to the bus, then reads every device's status once (resolves when read). */
  start(bus: EventBus, statuses: StatusSource): Promise<void> {
    const batch = () => this.#batch;
    const pushStatus = (status: LiveDeviceStatus | undefined) => { if (status) batch().status.push(status); };
    this.#unsubscribe.push(
      bus.on('telemetry.accepted', ({ deviceId, readings }) => {
        if (!this.#streaming) {
          this.#skipReadings();
          for (const reading of readings) this.#latest.offerAccepted(deviceId, reading);
          return;
        }
        this.#skipping = false;
        const out = batch().readings;
        for (const reading of readings) {
          const live = toLiveReading(deviceId, reading);
          // A late or resent reading is history, not news: the history API has it.
          if (this.#latest.offer(live)) out.push(live);
        }
      }),
      bus.on('device.online', (event) => { batch().status.push(this.#status.online(event)); }),
      bus.on('device.offline', (event) => { pushStatus(this.#status.offline(event)); }),
      bus.on('device.registered', (event) => { pushStatus(this.#status.registered(event)); }),
      bus.on('device.removed', (event) => {
        this.#latest.forgetDevice(event.deviceId);
        pushStatus(this.#status.removed(event));
      }),
      bus.on('command.status', ({ command }) => { batch().commands.push(command); }),
      bus.on('job.progress', ({ job }) => { batch().jobs.push(job); }),
      bus.on('state.reported', ({ deviceId, reported, at }) => { batch().state.push({ device: deviceId, kind: 'reported', state: reported, at }); }),
      bus.on('state.desired', ({ deviceId, desired, version, at }) => {
        batch().state.push({ device: deviceId, kind: 'desired', state: desired, version, at });
      }),
    );
    this.#timer = setInterval(() => this.tick(), this.options.tickMs);
    this.#timer.unref();
    return this.#status.load(statuses);
  }

  /** Where snapshots take the alerts firing now from (the alert engine). */
  useAlerts(firing: () => readonly AlertView[]): void {
    this.#firingAlerts = firing;
  }

  /**
   * An alert fired or resolved, on any node (the alert engine's onAlert, not
   * the bus: the bus carries an alert only on the node that announced it).
   */
  alert(alert: AlertView): void {
    if (this.#stopped) return;
    this.#batch.alerts.push(alert);
  }

  /**
   * Whether readings go into the ticks' batches (and so the ring): while a
   * connection is open, and after the last one went for as long as the ring
   * could still answer a resume from before it (ringTicks ticks with events;
   * a resume from further back gets a snapshot anyway). Then only the
   * snapshot state takes them, with no object per reading: at full ingest
   * the readings nobody watched were an eighth of what the hub allocated, and
   * the ring kept up to ringItems of them alive, for the GC to move and scan.
   */
  get #streaming(): boolean {
    return this.#connections.size > 0 || this.#seq - this.#unwatchedSince < this.options.ringTicks;
  }

  /**
   * The first reading left out of the batches: the ring no longer holds all
   * that happened, so it is emptied and the seq moves on. A resume from any
   * id sent before then gets a snapshot (which has the readings left out),
   * not a replay without them.
   */
  #skipReadings(): void {
    if (this.#skipping) return;
    this.#skipping = true;
    this.#seq++;
    this.#ring.clear();
  }

  /** A connection went: from the last one on, the ring's grace period counts (#streaming). */
  #left(connection: LiveConnection): void {
    if (this.#connections.delete(connection) && this.#connections.size === 0) this.#unwatchedSince = this.#seq;
  }

  /** Cluster mode: snapshots include the other nodes' latest readings, and readings are received for the filters in use. */
  usePeers(peers: LivePeers): void {
    this.#peers = peers;
    this.#interestChanged();
  }

  /** The latest readings this node holds for `filter` (what it answers another node's gather with). */
  latest(filter: LiveFilter): LiveReading[] {
    return this.#latest.select(filter);
  }

  /** Stops listening and closes every connection (hub shutdown: 1001). */
  stop(code: number, reason: string): void {
    this.#stopped = true;
    clearInterval(this.#timer);
    for (const off of this.#unsubscribe.splice(0)) off();
    for (const connection of this.#connections) connection.close(code, reason);
    this.#connections.clear();
  }

  /**
   * A new stream: hello, then a snapshot, or for an SSE client that says
   * which event it saw last (`resumeAfter`), only the events after it when
   * the ring still holds all of them.
   */
  attach(transport: LiveTransport, filter: LiveFilter, resumeAfter?: number): LiveConnection {
    const connection = new LiveConnection(transport, this.options);
    connection.setFilter(filter);
    connection.send(JSON.stringify({ type: 'hello', version: 1, tickMs: this.options.tickMs }));
    const missed = resumeAfter === undefined ? undefined : this.#ring.since(resumeAfter, this.#seq);
    if (missed === undefined && this.#peers) {
      // The snapshot waits for the other nodes' latest readings; events start after it.
      void this.#gathered(filter).then(() => {
        if (connection.closed || this.#stopped) return;
        this.#connections.add(connection);
        this.#interestChanged();
        this.sendSnapshot(connection);
      });
      return connection;
    }
    this.#connections.add(connection);
    this.#interestChanged();
    if (missed === undefined) {
      this.sendSnapshot(connection);
    } else {
      const frames: { text: string; seq: number }[] = [];
      for (const entry of missed) {
        const mine = filter.apply(entry.batch);
        if (batchSize(mine) > 0) frames.push({ text: eventsFrame(entry.seq, mine, false), seq: entry.seq });
      }
      connection.sendReplay(frames);
    }
    return connection;
  }

  /**
   * Stored readings from before this start (InfluxDB), so a snapshot after a
   * restart still has every series' latest value. Not news, so not streamed;
   * a live reading that came first and is newer keeps its place.
   */
  seed(readings: Iterable<LiveReading>): number {
    let kept = 0;
    for (const reading of readings) if (this.#latest.offer(reading)) kept++;
    return kept;
  }

  detach(connection: LiveConnection): void {
    connection.detached = true;
    this.#left(connection);
    this.#interestChanged();
  }

  /**
   * A connection that is behind gets its snapshot once its queue drains, so
   * a client sending subscribe after subscribe queues one snapshot, not many.
   */
  subscribe(connection: LiveConnection, filter: LiveFilter): void {
    connection.setFilter(filter);
    this.#interestChanged();
    const snapshot = () => {
      if (connection.transport.bufferedAmount > this.options.conflateBytes) connection.snapshotDue = true;
      else this.sendSnapshot(connection);
    };
    if (this.#peers) void this.#gathered(filter).then(() => { if (!connection.closed && connection.filter === filter) snapshot(); });
    else snapshot();
  }

  /** Offers the other nodes' latest readings for `filter` to the snapshot state (never rejects). */
  async #gathered(filter: LiveFilter): Promise<void> {
    try {
      this.seed(await this.#peers!.gather(filter));
    } catch {
      // A snapshot with this node's knowledge only: better than none; readings keep coming.
    }
  }

  /** Tells the cluster bridge which readings this node's connections want. */
  #interestChanged(): void {
    if (!this.#peers) return;
    const devices = new Set<string>();
    let all = false;
    for (const connection of this.#connections) {
      const exact = connection.filter.exactDevices;
      if (!exact) {
        all = true;
        break;
      }
      for (const device of exact) devices.add(device);
    }
    this.#peers.setInterest({ all, devices });
  }

  sendSnapshot(connection: LiveConnection): void {
    const filter = connection.filter;
    const { devices, counts } = this.#status.select((id) => filter.device(id));
    const latest = this.#latest.select(filter);
    const alerts = this.#firingAlerts().filter((alert) => filter.device(alert.deviceId));
    connection.sendSnapshot(JSON.stringify({ type: 'snapshot', seq: this.#seq, counts, devices, latest, alerts }), this.#seq);
  }

  /** Public so tests can drive ticks; normally the timer calls it. */
  tick(): void {
    let batch: LiveBatch | undefined;
    if (batchSize(this.#batch) > 0) {
      batch = this.#batch;
      this.#batch = emptyBatch();
      this.#seq++;
      this.#ring.push(this.#seq, batch);
    }
    if (this.#connections.size === 0) return;
    const seq = this.#seq;
    const now = this.#now();
    let shared: string | undefined;
    const sharedFrame = () => (shared ??= eventsFrame(seq, batch!, false));
    for (const connection of this.#connections) {
      if (connection.snapshotDue && connection.transport.bufferedAmount <= this.options.conflateBytes) this.sendSnapshot(connection);
      connection.tick(now, seq, batch, sharedFrame);
      if (!connection.closed) continue;
      if (connection.tooSlow) this.#closedTooSlow++;
      this.#left(connection);
      this.#interestChanged();
    }
  }

  get stats(): LiveStats {
    let conflating = 0;
    let maxBufferedBytes = 0;
    for (const c of this.#connections) {
      if (c.conflating) conflating++;
      maxBufferedBytes = Math.max(maxBufferedBytes, c.transport.bufferedAmount);
    }
    return {
      connections: this.#connections.size, conflating, maxBufferedBytes, closedTooSlow: this.#closedTooSlow,
      seq: this.#seq, series: this.#latest.size, devices: this.#status.size, untracked: this.#latest.untracked,
    };
  }
}

export type RingEntry = { seq: number; batch: LiveBatch };

/**
 * The recent ticks, kept so an SSE client that reconnects with Last-Event-ID
 * gets what it missed instead of a whole snapshot. Bounded by ticks and by
 * readings, whichever comes first: at 10,000 readings/s the reading bound is
 * what holds memory down.
 */
export class EventRing {
  readonly #entries: RingEntry[] = [];
  readonly #maxTicks: number;
  readonly #maxItems: number;
  #items = 0;

  constructor(maxTicks: number, maxItems: number) {
    this.#maxTicks = maxTicks;
    this.#maxItems = maxItems;
  }

  push(seq: number, batch: LiveBatch): void {
    this.#entries.push({ seq, batch });
    this.#items += batchSize(batch);
    while (this.#entries.length > 1 && (this.#entries.length > this.#maxTicks || this.#items > this.#maxItems)) {
      this.#items -= batchSize(this.#entries.shift()!.batch);
    }
  }

  /**
   * The entries after `seq`, or undefined when some of them are gone (the
   * client must start again from a snapshot). `currentSeq` is the hub's
   * latest seq: ticks with nothing in them have no entry but still count.
   */
  /** Forgets every entry: a resume from before now gets a snapshot. */
  clear(): void {
    this.#entries.length = 0;
    this.#items = 0;
  }

  since(seq: number, currentSeq: number): RingEntry[] | undefined {
    if (!Number.isSafeInteger(seq) || seq < 0 || seq > currentSeq) return undefined;
    if (seq === currentSeq) return [];
    const oldest = this.#entries[0];
    if (oldest === undefined || oldest.seq > seq + 1) return undefined;
    return this.#entries.filter((entry) => entry.seq > seq);
  }
}
