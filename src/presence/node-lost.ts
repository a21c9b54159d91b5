/**
 * A node that dies without a goodbye (kill -9, power loss, a partition)
 * leaves its devices listed online. The holder of lease `node-lost` looks
 * every third of the node lease: each device claimed by a node that stopped
 * beating is marked offline with reason `node-lost` (a revision-checked
 * update, so a device that already reconnected elsewhere keeps its new
 * claim), told on the bus (every node's dashboards hear it) and recorded as a
 * `device_status` point; then the node's record is forgotten.
 *
 * Bound: a device of a dead node is listed offline at most a lease and a
 * third of a lease after that node's last beat (PULSEWIRE_NODE_LEASE_MS).
 * Devices that reconnect to another node are online again as soon as they
 * do, whatever this sweep has done.
 */
import type { LeaseTask } from '../cluster/leases.js';
import type { NodeDirectory } from '../cluster/node-directory.js';
import type { EventBus } from '../events/bus.js';
import { statusPoint } from '../storage/schema.js';
import type { DevicePresence } from './device-presence.js';

type Logger = { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };

export const NODE_LOST_REASON = 'node-lost';

export class NodeLostSweep implements LeaseTask {
  readonly #presence: DevicePresence;
  readonly #nodes: NodeDirectory;
  readonly #bus: EventBus;
  readonly #sink: { append(deviceId: string, points: ReturnType<typeof statusPoint>[]): Promise<void> };
  readonly #log: Logger;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;

  constructor(deps: {
    presence: DevicePresence; nodes: NodeDirectory; bus: EventBus; logger: Logger;
    sink: { append(deviceId: string, points: ReturnType<typeof statusPoint>[]): Promise<void> };
  }) {
    this.#presence = deps.presence;
    this.#nodes = deps.nodes;
    this.#bus = deps.bus;
    this.#sink = deps.sink;
    this.#log = deps.logger;
  }

  acquired(): void {
    this.#timer = setInterval(() => void this.sweep(), Math.max(50, Math.floor(this.#nodes.leaseMs / 3)));
    this.#timer.unref();
  }

  lost(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** One look (the timer's; tests call it too). */
  sweep(): Promise<void> {
    this.#running ??= this.#sweep().finally(() => { this.#running = undefined; });
    return this.#running;
  }

  async #sweep(): Promise<void> {
    const now = Date.now();
    const leaseMs = this.#nodes.leaseMs;
    const known = new Set(this.#nodes.known());
    // A node with no record at all is gone too, once its claim is older than a lease (its first beat
    // may simply not have reached this node yet).
    const isGone = (node: string | undefined, connectedAt: number | undefined) =>
      node !== this.#nodes.nodeId && !this.#nodes.isAlive(node) && (known.has(node ?? '') || now - (connectedAt ?? 0) > leaseMs);
    let released: string[];
    try {
      released = await this.#presence.releaseWhere((status) => isGone(status.node, status.connectedAt), NODE_LOST_REASON, now);
    } catch (err) {
      this.#log.warn({ err }, 'lost nodes\' devices not marked offline yet; retried at the next look');
      return;
    }
    for (const deviceId of released) {
      this.#bus.emit('device.offline', { deviceId, at: now, reason: 'node-lost' });
      void this.#sink.append(deviceId, [statusPoint(deviceId, false, NODE_LOST_REASON, now * 1000)]).catch(() => undefined);
    }
    const gone = [...known].filter((node) => !this.#nodes.isAlive(node));
    if (released.length > 0) this.#log.warn({ devices: released.length, nodes: gone }, 'devices of lost nodes marked offline (node-lost)');
    for (const node of gone) await this.#nodes.forget(node).catch(() => undefined);
  }
}
