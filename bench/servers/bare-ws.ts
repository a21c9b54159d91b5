/**
 * The baseline of the `connections` and `storm` scenarios: a bare `ws` server
 * on the same port setup as the hub (listen-like-hub.ts) that holds
 * device-sim's connections the cheapest way `ws` allows (holdDevices: one ping
 * sweep per interval, `[2, seq]` for each TELEMETRY). No auth, no registry,
 * no per-device state, no storage.
 */
import type { WebSocketServer } from 'ws';
import { closeListening, holdDevices, listenLikeHub } from './listen-like-hub.js';
import { serve } from '../lib/ipc.js';

let server: WebSocketServer | undefined;
let listening: Awaited<ReturnType<typeof listenLikeHub>> | undefined;
let sweep: NodeJS.Timeout | undefined;

/**
 * `probes`: answer every plain HTTP request 200 at once, so the storm can probe this
 * baseline as it probes the hub's /readyz: what any server on this port, doing nothing
 * per request, answers during the same storm (the kernel's accept queue included).
 */
async function start(args: { pingIntervalMs: number; port?: number; probes?: boolean }): Promise<{ port: number }> {
  listening = await listenLikeHub(args.port, args.probes ? (_request, response) => {
    response.writeHead(200, { 'content-type': 'text/plain' });
    response.end('ok\n');
  } : undefined);
  server = listening.server;
  sweep = holdDevices(server, args.pingIntervalMs);
  return { port: listening.port };
}

serve({
  start,
  clients: () => server?.clients.size ?? 0,
  /** The JS side of its RSS (the connections scenario splits each connection's cost). */
  memory: () => process.memoryUsage(),
  /** A full GC (the process must run with --expose-gc), as the hub gets one through its inspector. */
  collectGarbage: () => {
    if (!globalThis.gc) throw new Error('bare-ws was not started with --expose-gc');
    globalThis.gc();
  },
  /** `closeCode` (e.g. 1001, as the hub on SIGTERM): close each device with it; default drop the sockets. */
  stop: (args: { closeCode?: number } = {}) => new Promise<void>((resolve) => {
    clearInterval(sweep);
    for (const ws of server?.clients ?? []) {
      if (args.closeCode) ws.close(args.closeCode, 'server going away');
      else ws.terminate();
    }
    void closeListening(listening).then(resolve);
  }),
});
