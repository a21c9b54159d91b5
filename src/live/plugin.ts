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
import { ERRORS, truncateUtf8 } from '../errors/catalog.js';
import type { KeyStreams } from '../operators/key-streams.js';
import type { LiveConnection } from './connection.js';
import { forEachLatest, type StoredLatest } from '../storage/latest-readings.js';
import { liveSseRoute } from './sse-transport.js';
import { LiveHub } from './stream-hub.js';
import { liveWebSocketRoute } from './ws-transport.js';

declare module 'fastify' {
  interface FastifyInstance {
    live: LiveHub;
    /** Resolves once the snapshot's latest values were seeded from InfluxDB (true) or seeding gave up (false). */
    liveSeeded: Promise<boolean>;
  }
}

export type LiveGuard = (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
/** Follows a stream by the key that opened it (ended when the key is revoked or expires); returns the release. */
export type TrackStream = (request: FastifyRequest, connection: LiveConnection) => () => void;

export type LivePluginOptions = {
  requireOperator: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
  origins: OriginPolicy;
  /** Open streams by operator key: a revoked or expired key's are closed (1008, or SSE's last event). */
  streams: KeyStreams;
  /** Batching period of the stream (default 100 ms). */
  tickMs?: number;
  /** How long a connection may stay behind before 1013 (default 30 s); tests shorten it. */
  stallMs?: number;
  /** Ticks kept for SSE resume (default 600, a minute); tests shorten it. */
  ringTicks?: number;
};

export const DEFAULT_TICK_MS = 100;
/** How long seeding keeps retrying an InfluxDB that is down or still starting; then the snapshot fills from live readings only. */
const SEED_RETRY_MS = 60_000;
export const DEFAULT_STALL_MS = 30_000;

async function livePlugin(app: FastifyInstance, opts: LivePluginOptions): Promise<void> {
  const { config, registry, bus } = app;
  const hub = new LiveHub({
    tickMs: opts.tickMs ?? DEFAULT_TICK_MS,
    conflateBytes: config.liveConflateBytes,
    maxBufferedBytes: config.liveMaxBufferedBytes,
    stallMs: opts.stallMs ?? DEFAULT_STALL_MS,
    // A minute of ticks for SSE resume, but never more than this many events held.
    ringTicks: opts.ringTicks ?? 600,
    ringItems: 100_000,
    // Past it a new series is streamed but not remembered for snapshots: memory stays bounded whatever names devices invent.
    maxSeries: config.liveMaxSeries,
  });
  // Before the hub listens, so the first snapshot lists every device; events since are newer and win.
  await hub.start(bus, {
    list: (page) => registry.list(page),
    isOnline: (record) => app.online.isOnline(record.id, record.status),
  }).catch((err: unknown) => app.log.warn({ err }, 'live snapshot: device statuses not loaded'));
  app.decorate('live', hub);
  let closing = false;
  // Not awaited: the hub must come up (and /readyz tell) while InfluxDB is down.
  const seeded = seedLatest(app, hub, () => closing);
  app.decorate('liveSeeded', seeded);

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
  const track: TrackStream = (request, connection) => opts.streams.track(request.operator!, (err) => {
    request.log.info({ keyId: request.operator!.keyId, code: err.code }, 'live stream of an operator key ended');
    connection.close(err.spec.close ?? 1008, truncateUtf8(err.message, 123), err.code);
  });
  liveWebSocketRoute(app, hub, guard, track);
  liveSseRoute(app, hub, guard, track);

  app.addHook('preClose', async () => {
    closing = true;
    hub.stop(ERRORS.PW_ERR_SHUTDOWN.close, ERRORS.PW_ERR_SHUTDOWN.message);
    opts.streams.close();
  });
}

/**
 * The in-memory latest values die with the process; InfluxDB has them. Retried
 * with backoff for a bounded time (the database may still be being created),
 * logged once when it gives up, never thrown: the live stream works without it.
 */
async function seedLatest(app: FastifyInstance, hub: LiveHub, isClosing: () => boolean): Promise<boolean> {
  const started = Date.now();
  for (let attempt = 0; !isClosing(); attempt++) {
    try {
      // Seeded a socket read at a time as the answers stream in (each batch's devices checked against the
      // registry in turn): a fleet's series never parsed or offered in one block of the event loop.
      let kept = 0;
      const known = new Map<string, boolean>();
      let seeding = Promise.resolve();
      const seedBatch = async (batch: StoredLatest[]) => {
        const unseen = [...new Set(batch.map((reading) => reading.device))].filter((id) => !known.has(id));
        const identities = await Promise.all(unseen.map((id) => app.registry.identity(id)));
        unseen.forEach((id, i) => known.set(id, identities[i] !== undefined));
        // InfluxDB keeps a removed device's readings; the snapshot leaves removed devices out.
        kept += hub.seed(batch.filter((reading) => known.get(reading.device)));
      };
      await forEachLatest(app.storage.queryStream, {
        sinceMs: Date.now() - app.config.maxPastSeconds * 1000,
        maxSeries: app.config.liveMaxSeries,
      }, (batch) => {
        seeding = seeding.then(() => seedBatch(batch));
        // Awaited below; marked handled now, so a failure while the query still streams is not an unhandled rejection.
        seeding.catch(() => undefined);
      });
      await seeding;
      app.log.info({ series: kept }, 'live snapshot seeded from InfluxDB');
      return true;
    } catch (err) {
      if (Date.now() - started > SEED_RETRY_MS) {
        app.log.warn({ err: (err as Error).message }, 'live snapshot not seeded from InfluxDB; latest values come from new readings only');
        return false;
      }
      await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** attempt)).unref());
    }
  }
  return false;
}

export default fp(livePlugin, { name: 'pulsewire-live', dependencies: ['@fastify/websocket', 'pulsewire-gateway'] });
