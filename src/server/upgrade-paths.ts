/**
 * A WebSocket upgrade to a path that has no socket behind it is refused
 * before the upgrade, with 404 as any unknown path gets. Without this,
 * @fastify/websocket upgraded such a request whenever an ordinary route
 * matched it (`ws://host:8080/` hits the dashboard page) and closed the
 * socket at once with no code (1005): a firmware with its path missing saw
 * "connected, then closed", reconnected forever and never learnt why.
 */
import type { FastifyInstance } from 'fastify';
import { ERRORS } from '../errors/catalog.js';
import { DEVICE_PATH } from '../protocol/messages.js';

/** Call before any route is registered: routes are recorded as they are added. */
export function refuseUpgradesWithoutSocket(app: FastifyInstance, refused: (path: string) => void): void {
  const socketRoutes = new Set<string>();
  app.addHook('onRoute', (route) => {
    if ((route as { websocket?: boolean }).websocket) socketRoutes.add(route.url);
  });
  app.addHook('onRequest', async (request, reply) => {
    if (!request.ws) return;
    const route = request.routeOptions.url;
    if (route !== undefined && socketRoutes.has(route)) return;
    const path = request.url.split('?')[0] ?? request.url;
    refused(path);
    request.log.info({ path, remoteAddress: request.ip }, 'WebSocket upgrade to a path without a socket refused');
    // The socket was offered for an upgrade and cannot carry another request.
    return reply.code(404).headers({ connection: 'close' }).type('text/plain; charset=utf-8')
      .send(`${ERRORS.PW_ERR_NO_SOCKET_HERE.message} (devices: ${DEVICE_PATH})\n`);
  });
}
