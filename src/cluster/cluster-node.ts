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
import { PulsewireError } from '../errors/catalog.js';
import { NatsLink, redact } from './nats-link.js';
import { openJetStreamStores } from './open-jetstream-stores.js';
import { WindowHandover } from './window-handover.js';

type Logger = { info(obj: object, msg: string): void; warn(obj: object, msg: string): void; error(obj: object, msg: string): void };

/** How long a starting node waits for JetStream to answer (a NATS cluster electing its leaders at first start). */
export const JETSTREAM_READY_MS = 30_000;

/**
 * Connects to NATS and opens the shared stores; throws PW_ERR_NATS_UNREACHABLE
 * naming the variable. JetStream may not answer at once although NATS does
 * (a fresh NATS cluster elects a leader per bucket): opening is retried for
 * JETSTREAM_READY_MS, with a log line per attempt.
 */
export async function joinCluster(config: Config, logger: Logger): Promise<{ link: NatsLink; stores: Stores }> {
  const cluster = config.cluster!;
  const link = await NatsLink.open(cluster, config.nodeId, logger);
  const deadline = Date.now() + JETSTREAM_READY_MS;
  for (let attempt = 1; ; attempt++) {
    try {
      const stores = await openJetStreamStores(link.nc, { namespace: cluster.name, replicas: cluster.replicas, logger });
      return { link, stores };
    } catch (err) {
      const why = (err as Error).message;
      const hopeless = (err as Error).name === 'JetStreamNotEnabled' || /jetstream not enabled/i.test(why);
      if (hopeless || Date.now() > deadline) {
        await link.close();
        const hint = hopeless ? 'JetStream is not enabled on that server (nats-server -js)' : `JetStream did not answer within ${JETSTREAM_READY_MS / 1000} s`;
        throw new PulsewireError('PW_ERR_NATS_UNREACHABLE', `${cluster.servers.map(redact).join(', ')} (PULSEWIRE_NATS_URL): ${hint}: ${why}`, { cause: err });
      }
      const retryInMs = Math.min(5000, 500 * 2 ** (attempt - 1));
      logger.warn({ err: why, attempt, retryInMs }, 'JetStream not ready yet; opening the shared stores again');
      await new Promise((resolve) => setTimeout(resolve, retryInMs));
    }
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
