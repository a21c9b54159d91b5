/**
 * Whether a device is online, as every part of the hub should answer it (the
 * device API and its filter, the live snapshot, jobs' onlineOnly). This
 * node's own connections are the live truth for the devices it holds.
 * Another node's claim counts while that node is alive: a node that died
 * without a goodbye stops counting at once, before its devices are marked
 * `node-lost` in the store.
 */
import type { NodeDirectory } from '../cluster/node-directory.js';
import type { DeviceStatus } from '../registry/device-registry.js';
import type { DevicePresence } from './device-presence.js';

/** What this node knows of its own connections (the gateway's runtimes). */
export type LocalSessions = { isConnectedHere(deviceId: string): boolean };

export class OnlineDevices {
  readonly #local: () => LocalSessions;
  readonly #nodes: NodeDirectory;
  readonly #presence: DevicePresence;

  /** `local` is read lazily: the gateway is registered after the services that ask. */
  constructor(deps: { local: () => LocalSessions; nodes: NodeDirectory; presence: DevicePresence }) {
    this.#local = deps.local;
    this.#nodes = deps.nodes;
    this.#presence = deps.presence;
  }

  /** From a status already read (lists): no store read. */
  isOnline(deviceId: string, status: DeviceStatus | undefined): boolean {
    if (this.#local().isConnectedHere(deviceId)) return true;
    return status !== undefined && status.online && status.node !== this.#nodes.nodeId && this.#nodes.isAlive(status.node);
  }

  /** Reads the device's status when this node does not hold it. */
  async isOnlineNow(deviceId: string): Promise<boolean> {
    if (this.#local().isConnectedHere(deviceId)) return true;
    return this.isOnline(deviceId, await this.#presence.status(deviceId));
  }

  /** Whether another live node holds the device (a connection here must show life before it takes over). */
  async heldElsewhere(deviceId: string): Promise<string | undefined> {
    const status = await this.#presence.status(deviceId);
    if (!status?.online || status.node === this.#nodes.nodeId || !this.#nodes.isAlive(status.node)) return undefined;
    return status.node;
  }
}
