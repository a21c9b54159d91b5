/**
 * `GET /v1/live/sse`: the same stream as Server-Sent Events, for networks
 * that block WebSocket. Frames that carry state have an `id:` (`<boot>.<seq>`), so
 * a reconnecting EventSource sends `Last-Event-ID` and gets only what it
 * missed while the hub's ring still holds it, else a fresh snapshot. The
 * filter is in the query, since an SSE client cannot send frames.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ERRORS } from '../errors/catalog.js';
import { needs } from '../operators/scopes.js';
import type { LiveTransport } from './connection.js';
import { LiveFilter, parsePatterns } from './filter.js';
import type { LiveGuard, TrackStream } from './plugin.js';
import type { LiveHub } from './stream-hub.js';
import { CLOSE_GRACE_MS } from './ws-transport.js';

/** Comment lines keep proxies and load balancers from timing out a quiet stream. */
const KEEPALIVE_MS = 15_000;
const RECONNECT_MS = 2000;

export function liveSseRoute(app: FastifyInstance, hub: LiveHub, guard: LiveGuard, track: TrackStream): void {
  app.get('/v1/live/sse', {
    preValidation: guard,
    schema: {
      ...needs('read'),
      summary: 'Live stream for operators as Server-Sent Events (see docs/live-stream.md)',
      querystring: {
        type: 'object',
        properties: {
          devices: { type: 'string', maxLength: 65_536, description: 'comma-separated ids or prefixes ending in *' },
          names: { type: 'string', maxLength: 65_536, description: 'comma-separated names or prefixes ending in *' },
        },
        additionalProperties: false,
      },
    },
  }, (request: FastifyRequest, reply) => {
    const q = request.query as { devices?: string; names?: string };
    // Parsed before the stream starts, so a bad filter is still an ordinary 400.
    const filter = new LiveFilter(parsePatterns('devices', q.devices), parsePatterns('names', q.names));
    // An id from before a hub restart (another boot) or in no known form gets a fresh snapshot.
    const header = request.headers['last-event-id'];
    const lastEventId = hub.resumeSeq(typeof header === 'string' ? header : undefined);
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      'x-accel-buffering': 'no',
    });
    raw.write(`retry: ${RECONNECT_MS}\n\n`);
    // Nothing is written after end(): a write then would be emitted as an error nobody handles.
    const open = () => !raw.writableEnded && !raw.destroyed;
    raw.on('error', (err) => request.log.debug({ err: err.message }, 'live SSE response error'));
    const transport: LiveTransport = {
      send(text, seq) {
        if (open()) raw.write(seq === undefined ? `data: ${text}\n\n` : `id: ${hub.eventId(seq)}\ndata: ${text}\n\n`);
      },
      get bufferedAmount() {
        return raw.writableLength;
      },
      close(code, reason, cause) {
        if (!open()) return;
        const error = cause ?? (code === ERRORS.PW_ERR_LIVE_TOO_SLOW.close ? 'PW_ERR_LIVE_TOO_SLOW' : 'PW_ERR_SHUTDOWN');
        raw.end(`data: ${JSON.stringify({ type: 'error', code: error, message: reason })}\n\n`);
        setTimeout(() => raw.destroy(), CLOSE_GRACE_MS).unref();
      },
    };
    const connection = hub.attach(transport, filter, lastEventId);
    const untrack = track(request, connection);
    const keepalive = setInterval(() => { if (open()) raw.write(': keepalive\n\n'); }, KEEPALIVE_MS);
    keepalive.unref();
    raw.on('close', () => {
      untrack();
      clearInterval(keepalive);
      hub.detach(connection);
    });
  });
}
