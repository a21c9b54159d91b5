/**
 * What a client must do in bounded time and space before the hub spends
 * anything on it: send its request head (a WebSocket upgrade too) within
 * the handshake timeout, the whole request within the request timeout, and
 * a head no larger than the header limit. Node's http server enforces all
 * three; these are the hub's settings for them and an answer that names the
 * setting, counted in pulsewire_http_client_errors_total.
 *
 * Why each number matters:
 * - Node's headersTimeout is 60 s and is checked only every
 *   connectionsCheckingInterval (30 s by default), so a client sending one
 *   header byte a second (slowloris) held its descriptor for up to 90 s;
 *   fastify turns the request timeout off. The check runs here at a quarter
 *   of the handshake timeout (0.25 to 5 s), so a slow client goes within
 *   1.25 handshake timeouts. Upgraded sockets (devices, live streams) are
 *   not in Node's list of pending requests: the timeouts never touch them.
 * - With TLS the handshake itself comes first, and Node's own bound on it
 *   is 120 s; it gets the same timeout.
 */
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';

export type HttpLimits = {
  readonly handshakeTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly maxHeaderBytes: number;
};

/** Why a client's request was cut before it reached a route (metric label). */
export type ClientErrorReason = 'timeout' | 'header-too-big' | 'malformed' | 'tls-timeout' | 'tls-error';

/** Options for http.createServer (and https.createServer, which takes them too). */
export function serverOptions(limits: HttpLimits): { maxHeaderSize: number; connectionsCheckingInterval: number } {
  return {
    maxHeaderSize: limits.maxHeaderBytes,
    connectionsCheckingInterval: Math.min(5000, Math.max(250, Math.floor(limits.handshakeTimeoutMs / 4))),
  };
}

/** Options only a TLS server has. */
export function tlsServerOptions(limits: HttpLimits): { handshakeTimeout: number } {
  return { handshakeTimeout: limits.handshakeTimeoutMs };
}

/** Applies the headers timeout to the created server (fastify sets requestTimeout itself from its own option). */
export function applyServerLimits(server: { headersTimeout: number }, limits: HttpLimits): void {
  server.headersTimeout = limits.handshakeTimeoutMs;
}

/**
 * fastify's clientErrorHandler: Node found the request too slow, too big or
 * not HTTP before any route saw it. Answers with the status and one line
 * naming the setting, then closes, as Node's own handler would.
 */
export function clientErrorHandler(counted: (reason: ClientErrorReason) => void) {
  return (err: Error & { code?: string }, socket: Socket): void => {
    // A reset connection, or one the client closed mid-request (also after our 408), has nobody to
    // answer and is no limit at work.
    if (err.code === 'ECONNRESET' || err.code === 'HPE_INVALID_EOF_STATE') {
      socket.destroy();
      return;
    }
    // An https server hands TLS handshake failures here too, and then leaves the socket to this handler:
    // there is no HTTP to answer in yet, so it is dropped (an answer written to it waited forever).
    if (isTlsFailure(err)) {
      counted(err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT' ? 'tls-timeout' : 'tls-error');
      socket.destroy();
      return;
    }
    const [reason, status, text] =
      err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? ['timeout', 408, 'request not received in time (PULSEWIRE_HANDSHAKE_TIMEOUT_MS for the headers, PULSEWIRE_REQUEST_TIMEOUT_MS for all of it)'] as const
      : err.code === 'HPE_HEADER_OVERFLOW' ? ['header-too-big', 431, 'request line and headers larger than PULSEWIRE_MAX_HEADER_BYTES'] as const
      : ['malformed', 400, 'malformed HTTP request'] as const;
    counted(reason);
    if (socket.destroyed || !socket.writable) {
      socket.destroy();
      return;
    }
    const body = `${text}\n`;
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    // Closed once the answer is handed to the kernel, whatever the client does (end() alone left a half-open
    // socket to a client that never closes its side); a client that does not even read is dropped a moment later.
    socket.destroySoon();
    setTimeout(() => socket.destroy(), 1000).unref();
  };
}

function isTlsFailure(err: Error & { code?: string; library?: string }): boolean {
  return err.code?.startsWith('ERR_TLS_') === true || err.code?.startsWith('ERR_SSL_') === true || err.library === 'SSL routines';
}
