/**
 * Addresses without the pick-a-free-port-then-use race (issue 15).
 *
 * `unreachable()`: a URL where nothing listens, for as long as the test
 * holds it. A port found free and closed again can be taken by any other
 * process before the test connects; instead we keep a listener on
 * 127.0.0.1:P (so nobody else can bind P on 127.0.0.1 or the wildcard) and
 * hand out 127.0.0.2:P, where nothing is bound: connecting is refused
 * (ECONNREFUSED), as it is for a stopped server.
 *
 * `TcpRelay`: one stable loopback port in the test process in front of a
 * server that restarts (a hub killed and started again, an influxd stopped
 * for an outage). The server behind binds port 0 each time; only the relay's
 * port is handed out, and it stays ours for the whole test, so no other
 * worker can take it during the restart.
 */
import net from 'node:net';

export type Unreachable = {
  host: string;
  port: number;
  /** http://127.0.0.2:P plus `path` */
  url(path?: string): string;
  release(): Promise<void>;
};

export async function unreachable(): Promise<Unreachable> {
  const holder = net.createServer((socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    holder.once('error', reject);
    holder.listen(0, '127.0.0.1', resolve);
  });
  const { port } = holder.address() as net.AddressInfo;
  const host = '127.0.0.2';
  return {
    host,
    port,
    url: (path = '') => `http://${host}:${port}${path}`,
    release: () => new Promise<void>((resolve) => holder.close(() => resolve())),
  };
}

/**
 * Relays every connection on its own port to 127.0.0.1:`target`, byte for
 * byte, ends and resets included: when the server behind dies, the client
 * sees its connection end as it would without the relay. While `target` is
 * undefined each new connection is reset at once (no server there).
 */
export class TcpRelay {
  readonly port: number;
  /** Where new connections go; undefined while the server behind is down. */
  target: number | undefined;
  readonly #server: net.Server;
  readonly #pairs = new Set<net.Socket>();

  private constructor(server: net.Server, target: number | undefined) {
    this.#server = server;
    this.port = (server.address() as net.AddressInfo).port;
    this.target = target;
  }

  static async start(target?: number): Promise<TcpRelay> {
    const server = net.createServer({ allowHalfOpen: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    const relay = new TcpRelay(server, target);
    server.on('connection', (client) => relay.#relay(client));
    return relay;
  }

  /** http://127.0.0.1:PORT plus `path` */
  url(path = ''): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  /** Resets every relayed connection (both sides). */
  cutAll(): void {
    for (const socket of this.#pairs) socket.resetAndDestroy();
  }

  async close(): Promise<void> {
    this.cutAll();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #relay(client: net.Socket): void {
    if (this.target === undefined) {
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect({ port: this.target, host: '127.0.0.1', allowHalfOpen: true });
    this.#pairs.add(client).add(upstream);
    const forget = (socket: net.Socket) => () => this.#pairs.delete(socket);
    client.once('close', forget(client));
    upstream.once('close', forget(upstream));
    // An error on one side (refused, reset) resets the other: what the client would have seen.
    client.on('error', () => upstream.resetAndDestroy());
    upstream.on('error', () => client.resetAndDestroy());
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
