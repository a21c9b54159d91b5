/**
 * A webhook receiver for tests: a plain node:http server on 127.0.0.1, port 0,
 * that keeps every request (headers and the raw body) and answers as the test
 * says: 204, an error status, or never (a slow receiver, until released). It
 * can go away and come back on the same port (a receiver that is down).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type Received = { headers: http.IncomingHttpHeaders; raw: Buffer; event: { id: string; type: string; time: string; data: any } };
export type Mode = { kind: 'ok' } | { kind: 'status'; status: number } | { kind: 'hang' };

export class Receiver {
  readonly received: Received[] = [];
  /** Requests that arrived, answered or not. */
  arrived = 0;
  /** The event id of every request that arrived, answered or not, in order (a retry repeats one). */
  readonly attemptIds: string[] = [];
  mode: Mode = { kind: 'ok' };
  #server: http.Server;
  #port = 0;
  readonly #hanging: http.ServerResponse[] = [];

  private constructor() {
    this.#server = this.#create();
  }

  static async start(): Promise<Receiver> {
    const receiver = new Receiver();
    await receiver.#listen(0);
    return receiver;
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}/hook`;
  }

  get port(): number {
    return this.#port;
  }

  /** Event ids of the requests answered 2xx, in the order they came. */
  get acceptedIds(): string[] {
    return this.received.map((r) => r.event.id);
  }

  /** Stops listening: connections are refused until `up()`. */
  async down(): Promise<void> {
    this.release();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  /** Listens again on the same port. */
  async up(): Promise<void> {
    this.#server = this.#create();
    await this.#listen(this.#port);
  }

  /** Answers the requests held by `hang` (with 204, not counted as received). */
  release(): void {
    for (const res of this.#hanging.splice(0)) if (!res.writableEnded && !res.destroyed) res.writeHead(204).end();
  }

  async close(): Promise<void> {
    this.release();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #create(): http.Server {
    return http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        this.arrived++;
        this.attemptIds.push(String(JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}').id));
        const mode = this.mode;
        if (mode.kind === 'hang') {
          this.#hanging.push(res);
          return;
        }
        if (mode.kind === 'status') {
          res.writeHead(mode.status).end();
          return;
        }
        const raw = Buffer.concat(chunks);
        this.received.push({ headers: req.headers, raw, event: JSON.parse(raw.toString('utf8')) });
        res.writeHead(204).end();
      });
    });
  }

  #listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, '127.0.0.1', () => {
        this.#port = (this.#server.address() as AddressInfo).port;
        resolve();
      });
    });
  }
}
