/**
 * A TCP gate in front of the suite's influxd: a hub given `gate.url` writes
 * through it, and the test shuts the gate (every connection cut, new ones
 * refused) and opens it again. An InfluxDB outage on demand, so a real hub
 * fills its spool and answers ACK 4, without stopping the influxd that the
 * other test files share.
 */
import net from 'node:net';

export class InfluxGate {
  #open = true;
  readonly #sockets = new Set<net.Socket>();

  private constructor(readonly server: net.Server, readonly target: URL) {
    server.on('connection', (client) => this.#accept(client));
  }

  /** Listens on 127.0.0.1, port 0, forwarding to `influxUrl` (scheme, host and port; a path is ignored). */
  static async start(influxUrl: string): Promise<InfluxGate> {
    const gate = new InfluxGate(net.createServer(), new URL(influxUrl));
    await new Promise<void>((resolve, reject) => {
      gate.server.once('error', reject);
      gate.server.listen(0, '127.0.0.1', () => resolve());
    });
    return gate;
  }

  /** http://127.0.0.1:PORT, without a database. */
  get url(): string {
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('gate is not listening');
    return `http://127.0.0.1:${address.port}`;
  }

  /** InfluxDB is gone: open connections are cut and new ones closed at once. */
  shut(): void {
    this.#open = false;
    for (const socket of this.#sockets) socket.destroy();
  }

  open(): void {
    this.#open = true;
  }

  async stop(): Promise<void> {
    this.shut();
    await new Promise((resolve) => this.server.close(resolve));
  }

  #accept(client: net.Socket): void {
    if (!this.#open) return void client.destroy();
    const upstream = net.connect(Number(this.target.port), this.target.hostname);
    for (const [a, b] of [[client, upstream], [upstream, client]] as const) {
      this.#sockets.add(a);
      a.on('error', () => b.destroy());
      a.on('close', () => {
        this.#sockets.delete(a);
        b.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  }
}
