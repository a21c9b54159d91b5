/**
 * A dashboard's snapshot across nodes. A node keeps the latest value of each
 * series it received; the devices of a cluster send to many nodes (and move
 * between them), so no node alone knows every latest value. When a dashboard
 * connects (or changes its filter), its node asks every other live node for
 * the latest readings it holds for that filter, of the devices it has held,
 * waits for each to answer (bounded), and merges them by reading time into
 * its own snapshot state. In between snapshots it receives only the readings
 * its dashboards' filters want (bus-bridge.ts).
 *
 * Answers can be larger than a NATS message (a fleet's worth of series), so
 * each node answers in chunks on the asker's inbox and ends with `done`.
 */
import { createInbox, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { LiveFilter } from '../live/filter.js';
import type { LivePeers } from '../live/stream-hub.js';
import type { LiveReading } from '../live/types.js';
import type { BusBridge } from './bus-bridge.js';
import { SUBJECTS } from './nats-names.js';
import type { NodeDirectory } from './node-directory.js';

type Logger = { warn(obj: object, msg: string): void };

type Request = { origin: string; devices: readonly string[]; names: readonly string[] };
type Answer = { node: string; readings: LiveReading[]; done: boolean };

/** Readings per answer message: well under NATS's 1 MB at about 120 bytes each. */
const READINGS_PER_CHUNK = 4000;
/** How long a snapshot waits for the other nodes; a node that does not answer in time is left out. */
export const GATHER_WAIT_MS = 1500;

export class ClusterLivePeers implements LivePeers {
  readonly #nc: NatsConnection;
  readonly #nodeId: string;
  readonly #namespace: string;
  readonly #nodes: NodeDirectory;
  readonly #bridge: BusBridge;
  readonly #latest: (filter: LiveFilter) => LiveReading[];
  readonly #heldHere: (deviceId: string) => boolean;
  readonly #log: Logger;
  #subscription: Subscription | undefined;

  constructor(deps: {
    nc: NatsConnection; nodeId: string; namespace: string; nodes: NodeDirectory; bridge: BusBridge; logger: Logger;
    /** This node's latest readings for a filter (the live hub's). */
    latest: (filter: LiveFilter) => LiveReading[];
    /** Whether a device has been connected to this node since it started (only those readings are its to tell). */
    heldHere: (deviceId: string) => boolean;
  }) {
    this.#nc = deps.nc;
    this.#nodeId = deps.nodeId;
    this.#namespace = deps.namespace;
    this.#nodes = deps.nodes;
    this.#bridge = deps.bridge;
    this.#latest = deps.latest;
    this.#heldHere = deps.heldHere;
    this.#log = deps.logger;
  }

  /** Answers the other nodes' snapshot requests. */
  start(): void {
    this.#subscription = this.#nc.subscribe(SUBJECTS.snapshot(this.#namespace), { callback: (err, msg) => {
      if (err || !msg.reply) return;
      let request: Request;
      try {
        request = msg.json<Request>();
      } catch {
        return;
      }
      if (request.origin === this.#nodeId) return;
      this.#answer(msg.reply, new LiveFilter(request.devices, request.names));
    } });
  }

  stop(): void {
    this.#subscription?.unsubscribe();
  }

  setInterest(interest: { all: boolean; devices: ReadonlySet<string> }): void {
    this.#bridge.setInterest(interest);
  }

  async gather(filter: LiveFilter): Promise<LiveReading[]> {
    const waiting = new Set(this.#nodes.known().filter((node) => this.#nodes.isAlive(node)));
    if (waiting.size === 0 || !this.#nc.info) return [];
    const inbox = createInbox();
    const readings: LiveReading[] = [];
    await new Promise<void>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const sub = this.#nc.subscribe(inbox, { callback: (err, msg) => {
        if (err) return;
        try {
          const answer = msg.json<Answer>();
          readings.push(...answer.readings);
          if (answer.done) waiting.delete(answer.node);
        } catch {
          return;
        }
        if (waiting.size === 0) finish();
      } });
      const finish = () => {
        clearTimeout(timer);
        sub.unsubscribe();
        resolve();
      };
      timer = setTimeout(() => {
        this.#log.warn({ missing: [...waiting] }, 'live snapshot: nodes did not answer in time; their latest readings are left out');
        finish();
      }, GATHER_WAIT_MS);
      const request: Request = { origin: this.#nodeId, devices: filter.devices, names: filter.names };
      try {
        this.#nc.publish(SUBJECTS.snapshot(this.#namespace), JSON.stringify(request), { reply: inbox });
      } catch {
        finish();
      }
    });
    return readings;
  }

  #answer(inbox: string, filter: LiveFilter): void {
    const mine = this.#latest(filter).filter((reading) => this.#heldHere(reading.device));
    try {
      for (let i = 0; i < mine.length || i === 0; i += READINGS_PER_CHUNK) {
        const chunk = mine.slice(i, i + READINGS_PER_CHUNK);
        const done = i + READINGS_PER_CHUNK >= mine.length;
        const answer: Answer = { node: this.#nodeId, readings: chunk, done };
        this.#nc.publish(inbox, JSON.stringify(answer));
      }
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'live snapshot request not answered');
    }
  }
}
