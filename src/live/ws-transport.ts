/**
 * `GET /v1/live`: the operator stream over WebSocket. The origin and the
 * credentials are checked before the upgrade, so a foreign page (403) or a
 * caller without token or session (401) gets a plain HTTP answer and never a
 * socket. Client frames are `subscribe` only; anything else is answered with
 * an error frame and the stream goes on.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { RawData, WebSocket } from 'ws';
import { isPulsewireError, PulsewireError } from '../errors/catalog.js';
import { needs } from '../operators/scopes.js';
import type { LiveTransport } from './connection.js';
import { LiveFilter, parseSubscribe } from './filter.js';
import type { LiveGuard, TrackStream } from './plugin.js';
import type { LiveHub } from './stream-hub.js';

export const LIVE_PATH = '/v1/live';
/** A consumer that stopped reading never answers our close frame; it is cut off after this. */
export const CLOSE_GRACE_MS = 5000;
/**
 * A dashboard whose network vanished without a FIN would otherwise hold its
 * socket forever on a quiet fleet; browsers answer pings on their own.
 */
const PING_INTERVAL_MS = 30_000;

export function webSocketTransport(socket: WebSocket): LiveTransport {
  return {
    send: (text) => socket.send(text),
    get bufferedAmount() {
      return socket.bufferedAmount;
    },
    close(code, reason) {
      socket.close(code, reason);
      setTimeout(() => socket.terminate(), CLOSE_GRACE_MS).unref();
    },
  };
}

export function liveWebSocketRoute(app: FastifyInstance, hub: LiveHub, guard: LiveGuard, track: TrackStream): void {
  app.route({
    method: 'GET',
    url: LIVE_PATH,
    websocket: true,
    schema: { ...needs('read'), summary: 'Live stream for operators (WebSocket, JSON text frames; see docs/live-stream.md)' },
    preValidation: guard,
    handler: (socket: WebSocket, request: FastifyRequest) => {
      const connection = hub.attach(webSocketTransport(socket), LiveFilter.ALL);
      const reject = (err: PulsewireError) => connection.send(JSON.stringify({ type: 'error', code: err.code, message: err.message }));
      // Attached at once, before anything asynchronous, or an early subscribe would be lost.
      socket.on('message', (data: RawData, isBinary: boolean) => {
        if (isBinary) return reject(new PulsewireError('PW_ERR_LIVE_SUBSCRIBE', 'send JSON text frames'));
        try {
          hub.subscribe(connection, parseSubscribe(rawText(data)));
        } catch (err) {
          if (!isPulsewireError(err)) throw err;
          reject(err);
        }
      });
      let alive = true;
      socket.on('pong', () => { alive = true; });
      const ping = setInterval(() => {
        if (!alive) return socket.terminate();
        alive = false;
        socket.ping();
      }, PING_INTERVAL_MS);
      ping.unref();
      socket.on('error', (err) => request.log.debug({ err: err.message }, 'live socket error'));
      const untrack = track(request, connection);
      socket.on('close', () => {
        untrack();
        clearInterval(ping);
        hub.detach(connection);
      });
    },
  });
}

function rawText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data as ArrayBuffer).toString('utf8');
}
