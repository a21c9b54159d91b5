/**
 * The webhooks scenario's receivers: plain node:http servers on loopback
 * (keep-alive, as a real receiver would be) answering 204 at once, each
 * counting what it got and when the last one came.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type Receivers = {
  readonly urls: string[];
  /** Deliveries per receiver. */
  counts(): number[];
  total(): number;
  /** performance.now() of the latest delivery to any receiver. */
  lastAt(): number;
  close(): Promise<void>;
};

export async function startReceivers(n: number): Promise<Receivers> {
  const counts = new Array<number>(n).fill(0);
  let lastAt = 0;
  const servers = await Promise.all(Array.from({ length: n }, (_, i) => new Promise<http.Server>((resolve) => {
    const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
      req.resume();
      req.on('end', () => {
        counts[i]!++;
        lastAt = performance.now();
        res.writeHead(204).end();
      });
    });
    server.listen(0, '127.0.0.1', () => resolve(server));
  })));
  return {
    urls: servers.map((s) => `http://127.0.0.1:${(s.address() as AddressInfo).port}/hook`),
    counts: () => [...counts],
    total: () => counts.reduce((a, b) => a + b, 0),
    lastAt: () => lastAt,
    async close() {
      await Promise.all(servers.map((s) => new Promise<void>((resolve) => {
        s.closeAllConnections();
        s.close(() => resolve());
      })));
    },
  };
}
