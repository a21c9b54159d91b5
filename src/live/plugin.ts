/**
 * The live stream for operators (docs/live-stream.md): `GET /v1/live`
 * (WebSocket) and `GET /v1/live/sse`, fed from the event bus by one LiveHub.
 * Both refuse a foreign Origin (403) and missing credentials (401) before
 * anything streams; the browser page's session cookie is as good as the
 * bearer token here, which is exactly why the origin check matters.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { OriginPolicy } from '../api/operator-auth.js';
import { ERRORS } from '../errors/catalog.js';
import { liveSseRoute } from './sse-transport.js';
import { LiveHub } from './stream-hub.js';
import { liveWebSocketRoute } from './ws-transport.js';

declare module 'fastify' {
  interface FastifyInstance {
    live: LiveHub;
  }
}

export type LiveGuard = (request: FastifyRequest, reply: FastifyReply) => Promise<void>;

export type LivePluginOptions = {
  requireOperator: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
  origins: OriginPolicy;
  /** Batching period of the stream (default 100 ms). */
  tickMs?: number;
  /** How long a connection may stay behind before 1013 (default 30 s); tests shorten it. */
  stallMs?: number;
  /** Ticks kept for SSE resume (default 600, a minute); tests shorten it. */
  ringTicks?: number;
};

export const DEFAULT_TICK_MS = 100;
export const DEFAULT_STALL_MS = 30_000;

async function livePlugin(app: FastifyInstance, opts: LivePluginOptions): Promise<void> {
  const { config, registry, gateway, bus } = app;
  const hub = new LiveHub({
    tickMs: opts.tickMs ?? DEFAULT_TICK_MS,
    conflateBytes: config.liveConflateBytes,
    maxBufferedBytes: config.liveMaxBufferedBytes,
    stallMs: opts.stallMs ?? DEFAULT_STALL_MS,
    // A minute of ticks for SSE resume, but never more than this many events held.
    ringTicks: opts.ringTicks ?? 600,
    ringItems: 100_000,
    maxSeries: 200_000,
  });
  hub.start(bus, {
    list: (page) => registry.list(page),
    isOnline: (id) => gateway.runtimes.peek(id)?.session !== undefined,
  });
  app.decorate('live', hub);

  const guard: LiveGuard = async (request, reply) => {
    try {
      opts.origins.check(request);
      await opts.requireOperator(request, reply);
    } catch (err) {
      // The request may be an upgrade: the socket cannot carry another request after our answer.
      reply.header('connection', 'close');
      throw err;
    }
  };
  liveWebSocketRoute(app, hub, guard);
  liveSseRoute(app, hub, guard);

  app.addHook('preClose', async () => {
    hub.stop(ERRORS.PW_ERR_SHUTDOWN.close, ERRORS.PW_ERR_SHUTDOWN.message);
  });
}

export default fp(livePlugin, { name: 'pulsewire-live', dependencies: ['@fastify/websocket', 'pulsewire-gateway'] });
