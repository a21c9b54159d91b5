/**
 * Probes and metrics. /healthz and /readyz are open, as orchestrators probe
 * them without credentials; /readyz is 200 only when the hub listens,
 * InfluxDB answers and the spool has room (a full spool means devices get
 * ACK 4, which an operator should see as "not ready"), and in cluster mode
 * while NATS is connected (without it the node keeps its devices, but cannot
 * admit new ones: their identity is in JetStream). /metrics needs the operator token like every other
 * operator endpoint (Prometheus sends it with `authorization.credentials`).
 */
import type { FastifyInstance, onRequestAsyncHookHandler } from 'fastify';
import { needs } from '../operators/scopes.js';

export async function healthRoutes(app: FastifyInstance, opts: { requireOperator: onRequestAsyncHookHandler }): Promise<void> {
  // `security: []`: the OpenAPI description says these two need no token (the API's default is the bearer token).
  app.get('/healthz', { schema: { summary: 'Liveness of the hub process', security: [] } }, async () => ({ status: 'ok' }));

  app.get('/readyz', { schema: { summary: 'Ready: listening, InfluxDB answers, the spool has room', security: [] } }, async (_request, reply) => {
    const listening = app.server.listening;
    // The last background ping's answer (influx-reachability.ts): InfluxDB's latency is not the probe's.
    const influx = await app.influxReachability.reachable();
    const spool = !app.spool.full;
    const nats = app.cluster ? app.cluster.link.connected : undefined;
    const ready = listening && influx && spool && nats !== false;
    const checks = { listening, influx, spool, ...(nats === undefined ? {} : { nats }) };
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', checks });
  });

  app.get('/metrics', { onRequest: opts.requireOperator, schema: { ...needs('read'), summary: 'Prometheus metrics' } }, async (_request, reply) => {
    const { text, contentType } = await app.metricsText();
    return reply.type(contentType).send(text);
  });
}
