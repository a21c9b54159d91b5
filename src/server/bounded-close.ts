/**
 * fastify's close calls server.close(), which waits until every HTTP
 * connection has finished its response, and only then runs the onClose hooks
 * that drain and close the spool. A client that stopped reading a response (a
 * dashboard tab asleep, a stalled proxy, a slowloris reader) would hold that
 * forever: run-hub's deadline then exits 1 with the spool still open. Responses
 * in flight get a grace; then their connections are cut, and the log says so.
 *
 * Register it last: preClose hooks run in registration order, so the grace
 * starts once devices and live streams are closed, right before server.close().
 */
import type { FastifyInstance } from 'fastify';

export function cutUnfinishedResponsesOnClose(app: FastifyInstance, graceMs: number): void {
  app.addHook('preClose', async () => {
    const timer = setTimeout(() => {
      app.server.getConnections((_err, count) => {
        if (count > 0) app.log.warn({ connections: count, graceMs }, 'closing: cutting HTTP connections whose responses did not finish in time');
        app.server.closeAllConnections();
      });
    }, graceMs);
    timer.unref();
    app.server.once('close', () => clearTimeout(timer));
  });
}
