/**
 * Operator API requests over TLS that trust a test CA, through real sockets:
 * node's fetch cannot be given a CA, so they go through node:https. (The live
 * stream over wss and SSE over https: test/live/live-client.ts with `ca`.)
 */
import type { IncomingHttpHeaders } from 'node:http';
import https from 'node:https';

export type HttpsAnswer = { status: number; headers: IncomingHttpHeaders; text: string; json: any };

export function httpsRequest(
  url: string,
  opts: { ca: Buffer; method?: string; headers?: Record<string, string>; body?: unknown },
): Promise<HttpsAnswer> {
  const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
  const headers = { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...opts.headers };
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method: opts.method ?? 'GET', ca: opts.ca, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => { text += chunk; });
      res.on('end', () => {
        let json: unknown;
        try { json = text ? JSON.parse(text) : undefined; } catch { /* not JSON */ }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

export type Refused = { status: number; body: string };
