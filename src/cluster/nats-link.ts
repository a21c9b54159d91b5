/**
 * This node's connection to NATS, as cluster mode needs it: connected once at
 * start (a node that cannot reach NATS then exits, naming PULSEWIRE_NATS_URL),
 * then kept: the client reconnects for ever, and meanwhile the node keeps its
 * device sockets and its spool (readings never go through NATS), says so in
 * the log, /readyz and /metrics, and catches up when NATS is back (the
 * buckets' watches resume, writes are retried by their callers).
 */
import { readFileSync } from 'node:fs';
import { connect, credsAuthenticator, type ConnectionOptions, type NatsConnection } from '@nats-io/transport-node';
import type { ClusterConfig } from '../config/index.js';
import { PulsewireError } from '../errors/catalog.js';

type Logger = { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };

/** How long the first connection may take before the node gives up starting. */
export const FIRST_CONNECT_TIMEOUT_MS = 10_000;

export class NatsLink {
  readonly nc: NatsConnection;
  #connected = true;
  #disconnects = 0;
  #downSince: number | undefined;
  readonly #log: Logger;

  private constructor(nc: NatsConnection, log: Logger) {
    this.nc = nc;
    this.#log = log;
    void this.#follow();
  }

  /** Connects, or throws PW_ERR_NATS_UNREACHABLE naming the variable and the servers tried. */
  static async open(cluster: ClusterConfig, nodeId: string, log: Logger): Promise<NatsLink> {
    const options: ConnectionOptions = {
      servers: [...cluster.servers],
      name: `pulsewire ${nodeId}`,
      timeout: FIRST_CONNECT_TIMEOUT_MS,
      // Never give up once connected: a node outlives a NATS restart with its devices connected.
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      reconnectJitter: 250,
      ...(cluster.credsFile ? { authenticator: credsAuthenticator(readFileSync(cluster.credsFile)) } : {}),
      ...(cluster.tls ? { tls: { ...(cluster.tls.ca ? { ca: cluster.tls.ca.toString() } : {}), ...(cluster.tls.cert ? { cert: cluster.tls.cert.toString() } : {}), ...(cluster.tls.key ? { key: cluster.tls.key.toString() } : {}) } } : {}),
    };
    try {
      const nc = await connect(options);
      log.info({ server: nc.getServer(), node: nodeId }, 'connected to NATS');
      return new NatsLink(nc, log);
    } catch (err) {
      throw new PulsewireError('PW_ERR_NATS_UNREACHABLE', `${cluster.servers.map(redact).join(', ')} (PULSEWIRE_NATS_URL): ${(err as Error).message}`, { cause: err });
    }
  }

  get connected(): boolean {
    return this.#connected;
  }

  /** Connections lost since start (pulsewire_nats_disconnects_total). */
  get disconnects(): number {
    return this.#disconnects;
  }

  /** Since when NATS has been out of reach (epoch ms), while it is. */
  get downSince(): number | undefined {
    return this.#downSince;
  }

  /** Drains what this node published and closes. */
  async close(): Promise<void> {
    if (this.nc.isClosed()) return;
    await this.nc.drain().catch(() => this.nc.close());
  }

  async #follow(): Promise<void> {
    for await (const status of this.nc.status()) {
      if (status.type === 'disconnect') {
        if (!this.#connected) continue;
        this.#connected = false;
        this.#disconnects++;
        this.#downSince = Date.now();
        this.#log.warn({ server: status.server }, 'NATS connection lost: devices stay connected and readings stay spooled; shared state waits until it is back');
      } else if (status.type === 'reconnect') {
        const downMs = this.#downSince === undefined ? 0 : Date.now() - this.#downSince;
        this.#connected = true;
        this.#downSince = undefined;
        this.#log.info({ server: status.server, downMs }, 'NATS connection back');
      }
    }
  }
}

/** A URL without its password or token, for logs and errors. */
export function redact(server: string): string {
  try {
    const url = new URL(server);
    if (url.password) url.password = '***';
    else if (url.username) url.username = '***';
    return url.toString().replace(/\/$/, '');
  } catch {
    return server;
  }
}
