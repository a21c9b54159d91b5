/**
 * The order in which the hub accepted connections, for protocol 2's "the
 * older connection is closed with 4000". Under load an upgrade can wait in
 * the hub long after its device gave up on it and connected again; the
 * order in which upgrades finish then no longer says which connection is
 * older. The order of acceptance does: the kernel hands connections over in
 * arrival order. TLS sockets are numbered when their handshake completes.
 */
import type { Server } from 'node:net';

export type AcceptOrder = (socket: object) => number | undefined;

export function trackAcceptOrder(server: Server): AcceptOrder {
  const order = new WeakMap<object, number>();
  let next = 0;
  const number = (socket: object) => { order.set(socket, ++next); };
  server.on('connection', number);
  server.on('secureConnection', number);
  return (socket) => order.get(socket);
}
