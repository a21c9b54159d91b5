/**
 * The event bus across nodes. The in-process bus stays the one seam: this
 * bridge publishes what happens on this node to NATS and feeds what happens
 * on the other nodes back into this node's bus, so the live stream, command
 * waiters, the outbox and the job runner keep listening to the bus they know
 * and hear the whole cluster.
 *
 * Two kinds of traffic, on two kinds of subject (cluster/nats-names.ts):
 * - events every node observes (device online/offline/registered/removed,
 *   command status, job progress, state changes): low-rate, one subject per
 *   event type, every node subscribed to all of them;
 * - readings, one subject per device, published always and received only
 *   where a dashboard wants them (setInterest): a node whose dashboards
 *   watch one device subscribes to that device's subject, not the fleet's.
 *
 * Payloads are CBOR (cbor-x): readings may carry bytes. Each message names
 * its origin node, and a node ignores its own. Core NATS, nothing stored: an
 * event published while NATS is down is not seen by the other nodes, which
 * is why nothing that must not be lost travels here (the stores hold the
 * truth; these events only say that it changed).
 */
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { decode, encode } from 'cbor-x';
import type { EventBus, HubEvents } from '../events/bus.js';
import { SUBJECTS, subjectId } from './nats-names.js';

type Logger = { warn(obj: object, msg: string): void };

/** The events every node hears of; `telemetry.accepted` goes by device subject instead. */
export const BRIDGED_EVENTS = [
  'device.registered', 'device.removed', 'device.online', 'device.offline',
  'command.status', 'job.progress', 'state.reported', 'state.desired',
] as const satisfies readonly (keyof HubEvents)[];

type BridgedEvent = (typeof BRIDGED_EVENTS)[number];
type Envelope = { origin: string; event: string; payload: unknown };

/** Which devices' readings this node's dashboards want: all of them, or these ids. */
export type TelemetryInterest = { all: boolean; devices: ReadonlySet<string> };

export class BusBridge {
  readonly #nc: NatsConnection;
  readonly #bus: EventBus;
  readonly #nodeId: string;
  readonly #namespace: string;
  readonly #log: Logger;
  readonly #unsubscribe: (() => void)[] = [];
  readonly #deviceSubscriptions = new Map<string, Subscription>();
  #allSubscription: Subscription | undefined;
  #eventsSubscription: Subscription | undefined;
  /**
   * Payloads that came from other nodes, so the bridge does not send them back
   * out. By object, not by a flag around emit: a listener may emit an event of
   * its own while handling a remote one (the job runner counting a remote
   * command status), and that one must go out.
   */
  readonly #remote = new WeakSet<object>();
  #published = 0;
  #received = 0;

  constructor(deps: { nc: NatsConnection; bus: EventBus; nodeId: string; namespace: string; logger: Logger }) {
    this.#nc = deps.nc;
    this.#bus = deps.bus;
    this.#nodeId = deps.nodeId;
    this.#namespace = deps.namespace;
    this.#log = deps.logger;
  }

  start(): void {
    for (const event of BRIDGED_EVENTS) {
      const subject = SUBJECTS.event(event, this.#namespace);
      this.#unsubscribe.push(this.#bus.on(event, (payload) => this.#publish(subject, event, payload)));
    }
    this.#unsubscribe.push(this.#bus.on('telemetry.accepted', (payload) => {
      this.#publish(SUBJECTS.live(payload.deviceId, this.#namespace), 'telemetry.accepted', payload);
    }));
    this.#eventsSubscription = this.#nc.subscribe(SUBJECTS.eventsAll(this.#namespace), { callback: (err, msg) => {
      if (!err) this.#receive(msg.data);
    } });
  }

  /** Subscribes to exactly the readings this node's dashboards want (the live hub says when that changes). */
  setInterest(interest: TelemetryInterest): void {
    if (interest.all) {
      this.#allSubscription ??= this.#subscribeReadings(SUBJECTS.liveAll(this.#namespace));
      for (const sub of this.#deviceSubscriptions.values()) sub.unsubscribe();
      this.#deviceSubscriptions.clear();
      return;
    }
    this.#allSubscription?.unsubscribe();
    this.#allSubscription = undefined;
    for (const [device, sub] of this.#deviceSubscriptions) {
      if (interest.devices.has(device)) continue;
      sub.unsubscribe();
      this.#deviceSubscriptions.delete(device);
    }
    for (const device of interest.devices) {
      if (!this.#deviceSubscriptions.has(device)) this.#deviceSubscriptions.set(device, this.#subscribeReadings(SUBJECTS.live(device, this.#namespace)));
    }
  }

  /** Reading subjects this node listens on now (tests, metrics). */
  get readingSubscriptions(): number {
    return this.#deviceSubscriptions.size + (this.#allSubscription ? 1 : 0);
  }

  /** Whether a bus payload came from another node (webhooks record only their own node's events). */
  isRemote(payload: object): boolean {
    return this.#remote.has(payload);
  }

  get stats(): { published: number; received: number } {
    return { published: this.#published, received: this.#received };
  }

  stop(): void {
    for (const off of this.#unsubscribe.splice(0)) off();
    this.#eventsSubscription?.unsubscribe();
    this.#allSubscription?.unsubscribe();
    for (const sub of this.#deviceSubscriptions.values()) sub.unsubscribe();
    this.#deviceSubscriptions.clear();
  }

  #subscribeReadings(subject: string): Subscription {
    return this.#nc.subscribe(subject, { callback: (err, msg) => {
      if (!err) this.#receive(msg.data, subjectId(msg.subject));
    } });
  }

  #publish(subject: string, event: string, payload: unknown): void {
    if (this.#remote.has(payload as object) || this.#nc.isClosed()) return;
    try {
      const envelope: Envelope = { origin: this.#nodeId, event, payload };
      this.#nc.publish(subject, encode(envelope));
      this.#published++;
    } catch (err) {
      // Disconnected: the client buffers up to its limit, then refuses; the stores hold the truth meanwhile.
      this.#log.warn({ err: (err as Error).message, event }, 'event not published to the other nodes');
    }
  }

  #receive(data: Uint8Array, device?: string): void {
    let envelope: Envelope;
    try {
      envelope = decode(data) as Envelope;
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'undecodable cluster event ignored');
      return;
    }
    if (envelope.origin === this.#nodeId) return;
    const event = envelope.event as BridgedEvent | 'telemetry.accepted';
    if (event === 'telemetry.accepted' ? device === undefined : !(BRIDGED_EVENTS as readonly string[]).includes(event)) return;
    this.#received++;
    const payload = envelope.payload as HubEvents[typeof event];
    this.#remote.add(payload);
    this.#bus.emit(event, payload);
  }
}
