/**
 * POST /write of line-protocol text that is already written (the spool's
 * entries, concatenated): the one request node-influx is bypassed for, since
 * its writePoints takes point objects and serialises them again. Queries and
 * database management stay with node-influx (influx-connection.ts).
 *
 * One keep-alive agent per connection, no retries of its own (the writer
 * owns retries and backoff), a timeout per request. A refusal is an
 * InfluxHttpError with InfluxDB's status and body, which influx-errors.ts
 * sorts as it sorts node-influx's.
 */
import http from 'node:http';
import https from 'node:https';
import { WRITE_PRECISION } from './schema.js';

export type InfluxEndpoint = {
  protocol: 'http' | 'https';
  host: string;
  port: number;
  database: string;
  username?: string;
  password?: string;
};

/** InfluxDB answered a write with something other than 204. */
export class InfluxHttpError extends Error {
  readonly status: number;

  constructor(status: number, body: string) {
    super(`A ${status} ${http.STATUS_CODES[status] ?? ''} error occurred: ${body}`);
    this.name = 'InfluxHttpError';
    this.status = status;
  }
}

/** InfluxDB's answers are a few hundred bytes; a proxy's error page is cut here. */
const MAX_ERROR_BODY = 4096;

/** Writes a request body of line protocol: text, or its UTF-8 bytes. */
export type LineWrite = (body: string | Uint8Array) => Promise<void>;

/** The request headers every call to `target` carries: its credentials, when the URL has some. */
export function endpointHeaders(target: InfluxEndpoint): http.OutgoingHttpHeaders {
  return target.username === undefined
    ? {}
    : { authorization: `Basic ${Buffer.from(`${target.username}:${target.password ?? ''}`).toString('base64')}` };
}

/** Reads an answer that is not a success (at most MAX_ERROR_BODY of it) and hands over InfluxDB's refusal once it ended. */
export function refusalOf(response: http.IncomingMessage, status: number, done: (err: Error) => void): void {
  let text = '';
  response.setEncoding('utf8');
  response.on('data', (chunk: string) => { if (text.length < MAX_ERROR_BODY) text += chunk; });
  response.on('end', () => done(new InfluxHttpError(status, text.slice(0, MAX_ERROR_BODY).trim())));
  response.on('error', done);
}

export function lineWriter(target: InfluxEndpoint, timeoutMs: number): LineWrite {
  const client = target.protocol === 'https' ? https : http;
  const agent = new client.Agent({ keepAlive: true });
  const query = new URLSearchParams({ db: target.database, precision: WRITE_PRECISION });
  const path = `/write?${query.toString()}`;
  const headers: http.OutgoingHttpHeaders = { ...endpointHeaders(target), 'content-type': 'text/plain; charset=utf-8' };
  return (body) =>
    new Promise<void>((resolve, reject) => {
      // Encoded once: its length for the header, its bytes for the socket.
      const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
      const request = client.request(
        { host: target.host, port: target.port, method: 'POST', path, agent, headers: { ...headers, 'content-length': bytes.length }, timeout: timeoutMs },
        (response) => {
          const status = response.statusCode ?? 0;
          if (status >= 200 && status < 300) {
            response.resume();
            response.on('end', resolve);
            response.on('error', reject);
            return;
          }
          refusalOf(response, status, reject);
        },
      );
      request.on('timeout', () => request.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })));
      request.on('error', reject);
      request.end(bytes);
    });
}
