/**
 * Device upgrades take their turn (admission.ts) the moment the request
 * head is parsed, before Fastify routes them: a request that has to wait
 * then costs the hub an accept and a parse, about half of what a routed
 * request costs (Fastify's request and reply, the hooks). In a reconnect
 * storm that decides whether the hub takes connections off the kernel's
 * accept queue as fast as they come: when it does not, the queue fills,
 * and a health probe waits behind thousands of devices (BENCHMARKS.md,
 * storm). When its turn comes, the request goes on to Fastify exactly as
 * it arrived, carrying its turn (`turnOf`) for the route's checks.
 *
 * Refusals here (queue full, waited too long) are the same HTTP answers the
 * route gives, written on the raw socket.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { DEVICE_PATH } from '../protocol/messages.js';
import { UpgradeTurn, type AdmissionRefusal, type DeviceAdmission } from './admission.js';

const TURN = Symbol('pulsewire.upgradeTurn');

type Upgrade = (request: IncomingMessage, socket: Duplex, head: Buffer) => void;

/** The turn the gate gave this request (undefined: it did not pass the gate, e.g. another path). */
export function turnOf(request: IncomingMessage): UpgradeTurn | undefined {
  return (request as IncomingMessage & { [TURN]?: UpgradeTurn })[TURN];
}

export type GateEvents = {
  refused(refusal: AdmissionRefusal, remoteAddress: string | undefined): void;
};

/**
 * Puts the gate in front of every 'upgrade' listener the server has now
 * (call once the WebSocket plugin registered its own, before listening).
 */
export function gateDeviceUpgrades(server: Server, admission: DeviceAdmission, events: GateEvents): void {
  const listeners = server.listeners('upgrade') as Upgrade[];
  server.removeAllListeners('upgrade');
  const forward: Upgrade = (request, socket, head) => {
    for (const listener of listeners) listener.call(server, request, socket, head);
  };
  const refuse = (socket: Duplex, refusal: AdmissionRefusal, remoteAddress: string | undefined) => {
    events.refused(refusal, remoteAddress);
    if (socket.destroyed) return;
    const body = `${refusal.error.message}\n`;
    socket.end(
      'HTTP/1.1 503 Service Unavailable\r\n'
      + `Retry-After: ${refusal.retryAfterS}\r\n`
      + 'Connection: close\r\n'
      + 'Content-Type: text/plain; charset=utf-8\r\n'
      + `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  };

  server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = request.url ?? '';
    const query = url.indexOf('?');
    if ((query === -1 ? url : url.slice(0, query)) !== DEVICE_PATH) return forward(request, socket, head);
    const remoteAddress = request.socket.remoteAddress;
    const turn = admission.queueTurn();
    if (!(turn instanceof UpgradeTurn)) return refuse(socket, turn, remoteAddress);
    (request as IncomingMessage & { [TURN]?: UpgradeTurn })[TURN] = turn;
    giveBackOnClose(socket, turn);
    if (!turn.waiting) return forward(request, socket, head);
    // Node removed its error listener before emitting 'upgrade': a reset while waiting must not throw.
    const ignore = () => undefined;
    socket.on('error', ignore);
    void turn.turn().then((refusal) => {
      socket.removeListener('error', ignore);
      if (socket.destroyed) return turn.done();
      if (refusal) return refuse(socket, refusal, remoteAddress);
      forward(request, socket, head);
    });
  });
}

/**
 * Whatever becomes of the request after (a hook's refusal, a reset), its
 * place is given back when the socket goes. A function of its own: a
 * listener created inside the 'upgrade' handler shares that handler's
 * closure context, which holds the request and its head, so every device's
 * upgrade request stayed alive as long as its connection (1.9 KB of heap per
 * device in bench/probes/heap-per-device.ts: the IncomingMessage, its headers
 * and buffers).
 */
function giveBackOnClose(socket: Duplex, turn: UpgradeTurn): void {
  socket.once('close', () => turn.done());
}
