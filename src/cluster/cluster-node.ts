/**
 * What makes a hub a node of a cluster (PULSEWIRE_NATS_URL), wired in one
 * place: the NATS connection, the stores in JetStream, the bus bridge, the
 * handover of duplicate windows, the live stream's peers and the sweep that
 * marks a lost node's devices offline. With one process none of this exists
 * and nothing else changes.
 */
import type { Config } from '../config/index.js';
import type { EventBus } from '../events/bus.js';
import type { LiveHub } from '../live/stream-hub.js';
import { NodeLostSweep } from '../presence/node-lost.js';
import type { Services } from '../services.js';
import type { statusPoint } from '../storage/schema.js';
import type { Stores } from '../stores/stores.js';
import { BusBridge } from './bus-bridge.js';
import { ClusterLivePeers } from './live-peers.js';
import { NatsLink } from './nats-link.js';
import { openJetStreamStores } from './open-jetstream-stores.js';
import { WindowHandover } from './window-handover.js';

type Logger = { info(obj: object, msg: string): void; warn(obj: object, msg: string): void; error(obj: object, msg: string): void };

/** Connects to NATS and opens the shared stores; throws PW_ERR_NATS_UNREACHABLE naming the variable. */
export async function joinCluster(config: Config, logger: Logger): Promise<{ link: NatsLink; stores: Stores }> {
  const cluster = config.cluster!;
  const link = await NatsLink.open(cluster, config.nodeId, logger);
  try {
    const stores = await openJetStreamStores(link.nc, { namespace: cluster.name, replicas: cluster.replicas, logger });
    return { link, stores };
  } catch (err) {
    await link.close();
    throw err;
  }
}

export class ClusterNode {
  readonly link: NatsLink;
  readonly bridge: BusBridge;
  readonly handover: WindowHandover;
  readonly nodeLost: NodeLostSweep;
  #peers: ClusterLivePeers | undefined;
  readonly #deps: { config: Config; services: Services; logger: Logger };

  constructor(deps: {
    link: NatsLink; stores: Stores; services: Services; bus: EventBus; config: Config; logger: Logger;
    sink: { append(deviceId: string, points: ReturnType<typeof statusPoint>[]): Promise<void> };
  }) {
    const { link, stores, services, bus, config, logger } = deps;
    this.link = link;
    this.#deps = { config, services, logger };
    this.bridge = new BusBridge({ nc: link.nc, bus, nodeId: config.nodeId, namespace: config.cluster!.name, logger });
    this.handover = new WindowHandover({ windows: stores.windows!, nodeId: config.nodeId, isAlive: (node) => services.nodes.isAlive(node), logger });
    this.nodeLost = new NodeLostSweep({ presence: services.presence, nodes: services.nodes, bus, sink: deps.sink, logger });
  }

  /** Starts relaying events; call before anything can emit one (before listening). */
  start(): void {
    this.bridge.start();
  }

  /** The live stream's snapshots and subscriptions span the cluster from here on. */
  connectLive(hub: LiveHub, heldHere: (deviceId: string) => boolean): void {
    const { config, services, logger } = this.#deps;
    this.#peers = new ClusterLivePeers({
      nc: this.link.nc, nodeId: config.nodeId, namespace: config.cluster!.name, nodes: services.nodes, bridge: this.bridge, logger,
      latest: (filter) => hub.latest(filter), heldHere,
    });
    this.#peers.start();
    hub.usePeers(this.#peers);
  }

  /** What /metrics reports about the cluster. */
  stats(): { natsConnected: boolean; natsDisconnects: number; nodesAlive: number; eventsPublished: number; eventsReceived: number } {
    const { nodes } = this.#deps.services;
    const { published, received } = this.bridge.stats;
    return {
      natsConnected: this.link.connected,
      natsDisconnects: this.link.disconnects,
      nodesAlive: 1 + nodes.known().filter((node) => nodes.isAlive(node)).length,
      eventsPublished: published,
      eventsReceived: received,
    };
  }

  /** Stops relaying (the stores and the connection close after the services). */
  stop(): void {
    this.#peers?.stop();
    this.bridge.stop();
  }
}
