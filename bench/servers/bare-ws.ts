/**
 * The baseline of the `connections` scenario: a bare `ws` server on the same
 * port setup as the hub (loopback, path /v1/device, the Pulsewire
 * subprotocol, no compression) that holds device-sim's connections the
 * cheapest way `ws` allows: one sweep pings every socket each interval (as
 * the hub does; device-sim answers automatically), and each TELEMETRY frame
 * gets the ACK device-sim waits for (`[2, seq]`, decoded with cbor-x). No
 * auth, no registry, no per-device state, no storage.
 */
import { decode, encode } from 'cbor-x';
import type { WebSocket, WebSocketServer } from 'ws';
import { listenLikeHub } from './listen-like-hub.js';
import { serve } from '../lib/ipc.js';

let server: WebSocketServer | undefined;
let sweep: NodeJS.Timeout | undefined;
const alive = new WeakMap<WebSocket, boolean>();

async function start(args: { pingIntervalMs: number; port?: number }): Promise<{ port: number }> {
  const listening = await listenLikeHub(args.port);
  server = listening.server;
  server.on('connection', (ws) => {
    alive.set(ws, true);
    ws.on('pong', () => alive.set(ws, true));
    ws.on('error', () => {});
    ws.on('message', (data: Buffer) => {
      let msg: unknown;
      try {
        msg = decode(data);
      } catch {
        return;
      }
      if (Array.isArray(msg) && msg[0] === 1) ws.send(encode([2, msg[1]]));
    });
  });
  sweep = setInterval(() => {
    for (const ws of server?.clients ?? []) {
      if (alive.get(ws) === false) { ws.terminate(); continue; }
      alive.set(ws, false);
      ws.ping();
    }
  }, args.pingIntervalMs);
  return { port: listening.port };
}

serve({
  start,
  clients: () => server?.clients.size ?? 0,
  /** `closeCode` (e.g. 1001, as the hub on SIGTERM): close each device with it; default drop the sockets. */
  stop: (args: { closeCode?: number } = {}) => new Promise<void>((resolve) => {
    clearInterval(sweep);
    for (const ws of server?.clients ?? []) {
      if (args.closeCode) ws.close(args.closeCode, 'server going away');
      else ws.terminate();
    }
    server?.close(() => resolve());
  }),
});
