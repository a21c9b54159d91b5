/**
 * Evaluates the alert rules on the live path: as readings are accepted (the
 * bus's `telemetry.accepted`), never by polling InfluxDB. It listens to that
 * event only while at least one rule exists, so a hub without rules pays
 * nothing per reading; with rules, a reading costs a Map lookup by its
 * series name, and only readings of a watched series go further.
 *
 * Staleness (and a pending alert whose duration ran out with no further
 * reading) is found by ONE timer sweeping the tracks, not a timer per device.
 *
 * Firing alerts are records in the `alerts` store (created only if absent,
 * deleted only at the revision seen), which is what makes them survive a
 * restart and what settles races: of two nodes (or two runs) that see an
 * alert fire, one creates the record and only that one announces it; the
 * same for resolving. Announcing is: `alert.firing` / `alert.resolved` on the
 * bus (webhooks and the live stream listen there) and an `alert` point.
 *
 * Cluster mode: a device's readings are evaluated on the node that accepted
 * them, the one holding it; the bridge's copies of other nodes' readings
 * (`isRemote`) are skipped, even of a device this node held until a moment
 * ago. A node drops its tracks of a device that came online elsewhere, so the
 * node it left does not later take its silence for staleness; a device
 * whose node died (`node-lost`) is watched for staleness by every node until
 * it comes online somewhere, and the store lets one of them announce it.
 */
import type { IPoint } from 'influx';
import type { EventBus, HubEvents } from '../events/bus.js';
import type { StorageLogger } from '../storage/logger.js';
import type { Bucket, BucketKey } from '../stores/bucket.js';
import { alertPoint } from './alert-point.js';
import { stepReading, stepSweep, type AlertTrack, type Step } from './alert-track.js';
import { RuleIndex, sameWatch, type WatchedRule } from './rule-index.js';
import { alertId, type AlertRule, type AlertView } from './types.js';

export const DEFAULT_SWEEP_MS = 1000;
/** How long a removed device is remembered: far longer than a store write takes. */
const REMOVED_KEPT_MS = 60_000;

export type AlertEngineOptions = {
  bus: EventBus;
  rules: Bucket<AlertRule>;
  alerts: Bucket<AlertView>;
  /** Where `alert` points go (the spool). */
  points: { append(deviceId: string, points: IPoint[]): Promise<void> };
  logger: StorageLogger;
  now?: () => number;
  sweepMs?: number;
  /**
   * Cluster mode: whether a bus event is the bridge's copy of another node's
   * (its readings, brought for this node's dashboards; its device coming
   * online). Absent: one process, every event is this node's.
   */
  isRemote?: (payload: object) => boolean;
  /**
   * The series the hub knows each device to send, before this run's readings
   * (the live stream's latest values, seeded from InfluxDB at start): a new
   * staleness rule watches those devices at once (see watchKnown).
   */
  knownSeries?: () => Iterable<KnownSeries>;
};

/** A device's series as the live stream's latest values hold it. */
export type KnownSeries = { device: string; name: string; v: unknown };

type Firing = { view: AlertView; revision: number };

/** The store key of an alert: grouped by rule, so a rule's alerts are listed together. */
export function alertKey(ruleId: string, deviceId: string, series: string): [string, string] {
  // Device ids never contain '/' (protocol/limits.ts), so the pair is unambiguous.
  return [ruleId, `${deviceId}/${series}`];
}

export class AlertEngine {
  readonly #bus: EventBus;
  readonly #rules: Bucket<AlertRule>;
  readonly #alerts: Bucket<AlertView>;
  readonly #points: AlertEngineOptions['points'];
  readonly #log: StorageLogger;
  readonly #now: () => number;
  readonly #sweepMs: number;
  readonly #isRemote: ((payload: object) => boolean) | undefined;
  /** Cluster mode (isRemote given): no node knows it holds a device before it sends. */
  readonly #clustered: boolean;
  readonly #knownSeries: (() => Iterable<KnownSeries>) | undefined;
  readonly #index = new RuleIndex();
  /** Every firing alert of the hub (cluster: of every node), as the store has them. */
  readonly #firing = new Map<string, Firing>();
  /** Per alert id, the resolved view of this node's delete in flight: the store's watch may report the delete first. */
  readonly #resolving = new Map<string, AlertView>();
  /** Who hears every alert this node learns of, its own and other nodes' (the live stream); see onAlert. */
  #observer: ((alert: AlertView) => void) | undefined;
  /** False while start loads the store: what is firing already is no news. */
  #observing = false;
  /**
   * Devices removed, with when: an alert of one that was still being stored
   * when it went resolves once stored (device.removed resolved only what
   * #firing held). Kept a minute, pruned by the sweep; a moved device's
   * tracks go too, but its alerts stay firing for its new node to resolve.
   */
  readonly #removed = new Map<string, number>();
  /** Per alert id, the store write in flight: a resolve waits for the create it follows. */
  readonly #inflight = new Map<string, Promise<void>>();
  readonly #unsubscribe: (() => void)[] = [];
  #offReadings: (() => void) | undefined;
  #sweep: NodeJS.Timeout | undefined;

  constructor(opts: AlertEngineOptions) {
    this.#bus = opts.bus;
    this.#rules = opts.rules;
    this.#alerts = opts.alerts;
    this.#points = opts.points;
    this.#log = opts.logger;
    this.#now = opts.now ?? Date.now;
    this.#sweepMs = opts.sweepMs ?? DEFAULT_SWEEP_MS;
    this.#isRemote = opts.isRemote;
    this.#clustered = opts.isRemote !== undefined;
    this.#knownSeries = opts.knownSeries;
  }

  /** Loads the rules and the firing alerts, then follows both stores and the bus. */
  async start(): Promise<void> {
    this.#unsubscribe.push(
      this.#rules.watch((change) => {
        if (change.value) this.applyRule(change.value);
        else if (typeof change.key === 'string') this.ruleRemoved(change.key);
      }),
      this.#alerts.watch((change) => this.#alertChanged(change.key, change.value, change.revision)),
    );
    for await (const entry of this.#alerts.entries()) this.#alertChanged(entry.key, entry.value, entry.revision);
    this.#observing = true;
    for await (const entry of this.#rules.entries()) this.applyRule(entry.value);
    // A rule deleted by a run (or node) that stopped before resolving its alerts: they resolve now.
    this.#resolveAll((view) => this.#index.get(view.ruleId) === undefined);
    this.#unsubscribe.push(
      this.#bus.on('device.removed', ({ deviceId }) => {
        this.#removed.set(deviceId, this.#now());
        this.#forgetDevice(deviceId, true);
      }),
      this.#bus.on('device.online', (online) => {
        if (this.#isRemote?.(online)) this.#forgetDevice(online.deviceId, false);
      }),
      // Cluster mode: a device whose node died is nobody's to sweep; every node watches it from now on
      // (the alerts store lets one of them announce it), until it comes online somewhere.
      this.#bus.on('device.offline', ({ deviceId, reason }) => {
        if (this.#clustered && reason === 'node-lost') this.#watchOrphan(deviceId);
      }),
    );
    this.#sweep = setInterval(() => this.sweep(), this.#sweepMs);
    this.#sweep.unref();
  }

  /** Stops evaluating and waits for the store writes in flight. */
  async close(): Promise<void> {
    clearInterval(this.#sweep);
    this.#offReadings?.();
    this.#offReadings = undefined;
    for (const off of this.#unsubscribe.splice(0)) off();
    await Promise.allSettled([...this.#inflight.values()]);
  }

  /**
   * `observer` hears each alert firing and resolving once, as the alerts
   * store records it: this node's and, in cluster mode, every other node's
   * (through the store's watch), unlike the bus's events, which only the
   * node that won the record emits (webhooks deliver them once per cluster).
   * The live stream listens here, so a dashboard on any node (behind nginx,
   * or on any of PULSEWIRE_WORKERS) sees every alert. A resolving another
   * node did carries no `value` (the store has none) and this node's clock
   * as resolvedAt. Not called for what is loaded at start (snapshots have it).
   */
  onAlert(observer: (alert: AlertView) => void): void {
    this.#observer = observer;
  }

  /** Alerts firing now (GET /v1/alerts, the live stream's snapshot). */
  firing(): AlertView[] {
    return [...this.#firing.values()].map((entry) => entry.view);
  }

  /** Whether the engine is listening to readings (tests: none without rules). */
  get evaluating(): boolean {
    return this.#offReadings !== undefined;
  }

  /**
   * A rule created or changed (by this node's API, or any node's through the
   * store's watch: both may arrive, the second changes nothing).
   */
  applyRule(rule: AlertRule): void {
    const previous = this.#index.get(rule.id);
    if (previous && previous.rule.updatedAt === rule.updatedAt) return;
    const keep = previous !== undefined && sameWatch(previous.rule, rule);
    if (previous && !keep) this.#resolveAll((view) => view.ruleId === rule.id);
    const watched = this.#index.set(rule, keep);
    if (!keep) this.#seed(watched);
    this.#syncSubscription();
  }

  /** A rule deleted: its firing alerts resolve, its tracks go. */
  ruleRemoved(ruleId: string): void {
    this.#index.delete(ruleId);
    this.#resolveAll((view) => view.ruleId === ruleId);
    this.#syncSubscription();
  }

  /** One pass over every track: staleness, and pending alerts whose duration ran out. */
  sweep(): void {
    const now = this.#now();
    for (const [deviceId, at] of this.#removed) if (now - at > REMOVED_KEPT_MS) this.#removed.delete(deviceId);
    for (const watched of this.#index.all()) {
      const { condition } = watched.rule;
      // forEach: no [deviceId, track] array per track per sweep (a track per device and rule, every second).
      watched.tracks.forEach((track, deviceId) => {
        const step = stepSweep(track, condition, watched.forMs, now);
        if (step !== 'none') this.#transition(watched, deviceId, track, step, now);
      });
    }
  }

  readonly #onReadings = (accepted: HubEvents['telemetry.accepted']): void => {
    if (this.#isRemote?.(accepted)) return;
    const { deviceId, readings } = accepted;
    // One clock read per message, and only for a message with a watched series.
    let now: number | undefined;
    for (let i = 0; i < readings.length; i++) {
      const reading = readings[i]!;
      if (typeof reading.value !== 'number') continue;
      const watching = this.#index.forReading(deviceId, reading.name);
      if (watching === undefined) continue;
      now ??= this.#now();
      for (const watched of watching) {
        if (!watched.matches(deviceId)) continue;
        const track = this.#trackOf(watched, deviceId, now);
        const step = stepReading(track, watched.rule.condition, watched.forMs, reading.value, now);
        if (step !== 'none') this.#transition(watched, deviceId, track, step, now);
      }
    }
  };

  #syncSubscription(): void {
    if (this.#index.size > 0) this.#offReadings ??= this.#bus.on('telemetry.accepted', this.#onReadings);
    else if (this.#offReadings) {
      this.#offReadings();
      this.#offReadings = undefined;
    }
  }

  /**
   * A staleness rule naming its devices watches them from now on, readings or
   * not; any staleness rule watches the devices the hub knows to send its
   * series (one process only: in a cluster no node knows it holds a device
   * before it sends). Otherwise rules watch the devices they see a reading from.
   */
  #seed(watched: WatchedRule): void {
    if (watched.rule.condition.kind !== 'stale' || this.#clustered) return;
    const { ids } = watched.rule.devices;
    if (ids) {
      const now = this.#now();
      for (const deviceId of ids) this.#trackOf(watched, deviceId, now);
    }
    if (this.#knownSeries) this.watchKnown(this.#knownSeries(), watched);
  }

  /**
   * Staleness rules (or only `only`) watch the devices these series belong
   * to, from now on: a device that went quiet before its rule was created,
   * or across a hub restart (the caller passes the series InfluxDB had once
   * the live stream is seeded), fires after afterSeconds like one that went
   * quiet under the rule's eyes. A track already there is left as it is.
   * One process only, as #seed.
   */
  watchKnown(series: Iterable<KnownSeries>, only?: WatchedRule): void {
    if (this.#clustered) return;
    const now = this.#now();
    for (const { device, name, v } of series) {
      if (typeof v !== 'number') continue;
      const watching = this.#index.forReading(device, name);
      if (watching === undefined) continue;
      for (const watched of watching) {
        if ((only === undefined || watched === only) && watched.rule.condition.kind === 'stale' && watched.matches(device)) {
          this.#trackOf(watched, device, now);
        }
      }
    }
  }

  /** Staleness rules watch a device no node holds, from now on. */
  #watchOrphan(deviceId: string): void {
    const now = this.#now();
    for (const watched of this.#index.all()) {
      if (watched.rule.condition.kind === 'stale' && watched.matches(deviceId)) this.#trackOf(watched, deviceId, now);
    }
  }

  /** The track of a device, created in the phase the store knows it in (firing after a restart or a takeover). */
  #trackOf(watched: WatchedRule, deviceId: string, now: number): AlertTrack {
    const existing = watched.tracks.get(deviceId);
    if (existing) return existing;
    const track = watched.track(deviceId, now);
    const firing = this.#firing.get(alertId(watched.rule.id, deviceId, watched.rule.series));
    if (firing) {
      track.phase = 'firing';
      track.firingSince = firing.view.firingSince;
      track.revision = firing.revision;
    }
    return track;
  }

  #transition(watched: WatchedRule, deviceId: string, track: AlertTrack, step: Step, now: number): void {
    const { rule } = watched;
    const id = alertId(rule.id, deviceId, rule.series);
    const key = alertKey(rule.id, deviceId, rule.series);
    if (step === 'fire') {
      const view: AlertView = {
        id, ruleId: rule.id, ruleName: rule.name, deviceId, series: rule.series, condition: rule.condition, state: 'firing',
        firingSince: track.firingSince, ...(rule.condition.kind !== 'stale' && track.lastValue !== undefined ? { value: track.lastValue } : {}),
      };
      this.#serialize(id, async () => {
        const revision = await this.#alerts.create(key, view);
        // Undefined: the store already has it firing (another node, or a run before a restart): announced then.
        if (revision === undefined) return;
        track.revision = revision;
        this.#learnFiring(id, view, revision);
        this.#announce('alert.firing', view, now);
        // The rule was deleted, or changed to watch something else, while this was being stored: ruleRemoved and
        // applyRule resolved what #firing held then, which this was not yet, so it resolves here (else it
        // would fire on with nothing left to resolve it, a restart included, as the rule id still exists).
        // The same for a device removed meanwhile (not before this fired: a device registered again under its id fires anew).
        const gone = this.#index.get(rule.id)?.tracks !== watched.tracks || (this.#removed.get(deviceId) ?? -Infinity) >= now;
        if (gone) await this.#resolve(key, id, undefined, this.#now());
      });
    } else {
      const value = rule.condition.kind === 'stale' ? undefined : track.lastValue;
      this.#serialize(id, () => this.#resolve(key, id, value, now));
    }
  }

  /** Resolves every firing alert `which` picks (a rule removed or changed, a device removed); no value. */
  #resolveAll(which: (view: AlertView) => boolean): void {
    const now = this.#now();
    for (const { view } of this.#firing.values()) {
      if (!which(view)) continue;
      this.#serialize(view.id, () => this.#resolve(alertKey(view.ruleId, view.deviceId, view.series), view.id, undefined, now));
    }
  }

  async #resolve(key: BucketKey, id: string, value: number | undefined, now: number): Promise<void> {
    const known = this.#firing.get(id) ?? (await this.#alerts.get(key).then((entry) => entry && { view: entry.value, revision: entry.revision }));
    if (!known) return;
    const resolved: AlertView = { ...known.view, state: 'resolved', resolvedAt: now };
    if (value === undefined) delete resolved.value;
    else resolved.value = value;
    this.#resolving.set(id, resolved);
    try {
      // False: another node resolved it first (or it fired again since): it announced that.
      if (!(await this.#alerts.delete(key, known.revision))) return;
      // Unless the store's watch reported the delete already (lmdb does, before delete returns).
      if (this.#firing.get(id)?.revision === known.revision) this.#learnResolved(id, resolved);
    } finally {
      this.#resolving.delete(id);
    }
    this.#announce('alert.resolved', resolved, now);
  }

  #announce(event: 'alert.firing' | 'alert.resolved', alert: AlertView, now: number): void {
    this.#log.info({ alert: alert.id, state: alert.state, value: alert.value }, event);
    this.#bus.emit(event, { alert });
    this.#points.append(alert.deviceId, [alertPoint(alert, now)]).catch((err: unknown) => {
      this.#log.warn({ err, alert: alert.id }, 'alert point not stored');
    });
  }

  /** Runs `write` after the one in flight for the same alert, so a resolve never overtakes its create. */
  #serialize(id: string, write: () => Promise<void>): void {
    const previous = this.#inflight.get(id) ?? Promise.resolve();
    const next = previous.then(write).catch((err: unknown) => {
      this.#log.error({ err, alert: id }, 'alert state not stored');
    });
    this.#inflight.set(id, next);
    void next.finally(() => {
      if (this.#inflight.get(id) === next) this.#inflight.delete(id);
    });
  }

  /** The store changed (this node's write, another node's, or the load at start). */
  #alertChanged(key: BucketKey, view: AlertView | undefined, revision: number): void {
    if (typeof key === 'string') return;
    const id = `${key[0]}/${key[1]}`;
    const track = this.#findTrack(key[0], key[1]);
    if (view) {
      this.#learnFiring(id, view, revision);
      if (track) {
        track.phase = 'firing';
        track.firingSince = view.firingSince;
        track.revision = revision;
      }
    } else {
      const known = this.#firing.get(id);
      if (known === undefined || known.revision >= revision) return;
      this.#learnResolved(id, this.#resolving.get(id) ?? { ...known.view, state: 'resolved', resolvedAt: this.#now() });
      if (track?.phase === 'firing') track.phase = 'ok';
    }
  }

  /** An alert fires at `revision` (this node's create, or the store's watch): the observer hears it the first time. */
  #learnFiring(id: string, view: AlertView, revision: number): void {
    const known = this.#firing.get(id);
    this.#firing.set(id, { view, revision });
    if (this.#observing && known?.revision !== revision) this.#observer?.(view);
  }

  /** A firing alert is gone from the store: the observer hears it resolved (another node's resolving: without the value it fired with). */
  #learnResolved(id: string, resolved: AlertView): void {
    this.#firing.delete(id);
    if (!this.#observing) return;
    if (resolved.value !== undefined && this.#resolving.get(id) !== resolved) {
      resolved = { ...resolved };
      delete resolved.value;
    }
    this.#observer?.(resolved);
  }

  #findTrack(ruleId: string, deviceAndSeries: string): AlertTrack | undefined {
    const watched = this.#index.get(ruleId);
    if (!watched) return undefined;
    return watched.tracks.get(deviceAndSeries.slice(0, deviceAndSeries.length - watched.rule.series.length - 1));
  }

  /** A removed device's alerts resolve; a device that moved to another node is that node's to evaluate. */
  #forgetDevice(deviceId: string, resolve: boolean): void {
    for (const watched of this.#index.all()) watched.tracks.delete(deviceId);
    if (resolve) this.#resolveAll((view) => view.deviceId === deviceId);
  }
}
