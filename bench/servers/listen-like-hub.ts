/**
 * The socket setup the baseline servers share with the hub: loopback, a free
 * port, path /v1/device, the Pulsewire subprotocol, no compression, the
 * hub's default message limit. Baselines differ only in what they do per frame.
 */
import { createServer, type RequestListener, type Server } from 'node:http';
import { decode, encode } from 'cbor-x';
import { WebSocketServer, type WebSocket } from 'ws';
import { SUBPROTOCOL } from '../../src/protocol/index.js';

/** How long a restart on its old port waits for another process to let go of it. */
const PORT_RETRY_MS = 30_000;

type Listening = { server: WebSocketServer; port: number; httpServer: Server };

/**
 * Stops listening: ws's server, then the HTTP server it was given (ws does not close one it did not create).
 * A kept-alive probe connection busy at the moment close() looks is not idle, and a probe every 200 ms keeps
 * it from ever timing out: idle connections are closed again until the server has let go of all of them.
 */
export function closeListening(listening: Listening | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (!listening) return resolve();
    listening.server.close(() => {
      const sweep = setInterval(() => listening.httpServer.closeIdleConnections(), 50);
      listening.httpServer.close(() => {
        clearInterval(sweep);
        resolve();
      });
    });
  });
}

/**
 * `port` 0 (default): a free one; a given port lets a restarted baseline take the same URL, and is
 * retried while another process holds it (on a shared machine the freed port may be taken meanwhile).
 * With `http`, HTTP requests other than the upgrade go to it on the same port, as on the hub.
 */
export async function listenLikeHub(port = 0, http?: RequestListener): Promise<Listening> {
  const deadline = Date.now() + PORT_RETRY_MS;
  for (;;) {
    try {
      return await listenOnce(port, http);
    } catch (err) {
      if (port === 0 || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

/** The hub's default listen(2) backlog (PULSEWIRE_LISTEN_BACKLOG): a storm baseline with a shorter queue would drop more attempts than the hub. */
export const HUB_LISTEN_BACKLOG = 4096;

function listenOnce(port: number, http: RequestListener | undefined): Promise<Listening> {
  const common = {
    path: '/v1/device', perMessageDeflate: false, maxPayload: 65_536,
    handleProtocols: (protocols: Set<string>) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
  };
  return new Promise((resolve, reject) => {
    // Without `http`, other requests get what ws's own server answers them: 426.
    const httpServer = createServer({ keepAliveTimeout: 72_000 }, http ?? ((_request, response) => {
      response.writeHead(426, { 'content-type': 'text/plain' });
      response.end('Upgrade Required');
    }));
    const server = new WebSocketServer({ ...common, server: httpServer });
    httpServer.once('error', reject);
    httpServer.listen({ port, host: '127.0.0.1', backlog: HUB_LISTEN_BACKLOG }, () => {
      httpServer.off('error', reject);
      resolve({ server, port: (httpServer.address() as { port: number }).port, httpServer });
    });
  });
}

/**
 * What every baseline does for the devices it holds, the cheapest way `ws`
 * allows: one sweep pings every socket each interval (as the hub does;
 * device-sim answers automatically), and each TELEMETRY frame gets the ACK
 * device-sim waits for (`[2, seq]`). Other decoded device messages go to
 * `onMessage`. Returns the sweep's timer.
 */
export function holdDevices(server: WebSocketServer, pingIntervalMs: number, onMessage?: (ws: WebSocket, msg: unknown[]) => void): NodeJS.Timeout {
  const alive = new WeakMap<WebSocket, boolean>();
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
      if (!Array.isArray(msg)) return;
      if (msg[0] === 1) ws.send(encode([2, msg[1]]));
      else onMessage?.(ws, msg);
    });
  });
  return setInterval(() => {
    for (const ws of server.clients) {
      if (alive.get(ws) === false) { ws.terminate(); continue; }
      alive.set(ws, false);
      ws.ping();
    }
  }, pingIntervalMs);
}
