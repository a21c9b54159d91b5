/**
 * One delivery attempt: a signed JSON POST with a deadline. Success is any
 * 2xx answer; anything else (another status, a redirect, which is not
 * followed, a refused address, a timeout, a reset) is a failure with a short
 * reason that ends up on the endpoint and in its failed list. The answer's
 * body is read (to keep the connection reusable) but at most 64 KiB of it.
 */
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { isPulsewireError } from '../errors/catalog.js';
import { guardedLookup, isRefusedAddress, urlHost, type Resolve } from './address-policy.js';
import { EVENT_ID_HEADER, EVENT_TYPE_HEADER, SIGNATURE_HEADER, signatureHeader } from './signature.js';
import type { WebhookEvent } from './types.js';

const MAX_ANSWER_BYTES = 64 * 1024;
export const USER_AGENT = 'Pulsewire-Webhooks/1';

export type Attempt = { ok: true; status: number } | { ok: false; reason: string };

export type PostOptions = {
  timeoutMs: number;
  /** Undefined: PULSEWIRE_WEBHOOK_ALLOW_PRIVATE, any address goes. */
  resolve: Resolve | undefined;
  agent: http.Agent;
  signal: AbortSignal;
  now?: () => number;
};

/** A keep-alive connection pool of one endpoint: one socket, since deliveries to an endpoint go one at a time. */
export function endpointAgent(url: string): http.Agent {
  const options = { keepAlive: true, maxSockets: 1, maxFreeSockets: 1 };
  return url.startsWith('https:') ? new https.Agent(options) : new http.Agent(options);
}

/**
 * One delivery attempt. A kept-alive connection the receiver closed as this request went out (servers close idle
 * ones, Node's after 5 s) fails with a reset before any answer; that says nothing about the receiver, so the request
 * goes once more at once on a new connection instead of counting as a failure and waiting out a backoff.
 */
export async function postEvent(url: string, secret: string, event: WebhookEvent, opts: PostOptions): Promise<Attempt> {
  const first = await sendOnce(url, secret, event, opts);
  if (first.ok || !first.staleConnection || opts.signal.aborted) return strip(first);
  return strip(await sendOnce(url, secret, event, opts));
}

type SendResult = Attempt & { staleConnection?: boolean };

function strip(result: SendResult): Attempt {
  return result.ok ? { ok: true, status: result.status } : { ok: false, reason: result.reason };
}

function sendOnce(url: string, secret: string, event: WebhookEvent, opts: PostOptions): Promise<SendResult> {
  if (opts.signal.aborted) return Promise.resolve({ ok: false, reason: 'delivery stopped (hub closing or lease lost)' });
  const target = new URL(url);
  const host = urlHost(target);
  // A literal address never goes through `lookup`, so it is checked here.
  if (opts.resolve && isIP(host) !== 0 && isRefusedAddress(host)) {
    return Promise.resolve({ ok: false, reason: `address refused: ${host} (PULSEWIRE_WEBHOOK_ALLOW_PRIVATE allows it)` });
  }
  const body = JSON.stringify(event);
  const headers = {
    'content-type': 'application/json',
    'user-agent': USER_AGENT,
    [EVENT_ID_HEADER]: event.id,
    [EVENT_TYPE_HEADER]: event.type,
    [SIGNATURE_HEADER]: signatureHeader(secret, body, (opts.now ?? Date.now)()),
  };
  const client = target.protocol === 'https:' ? https : http;
  return new Promise<SendResult>((resolve) => {
    let settled = false;
    let answered = false;
    const finish = (attempt: SendResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      opts.signal.removeEventListener('abort', onAbort);
      resolve(attempt);
    };
    const request = client.request(target, {
      method: 'POST', headers, agent: opts.agent,
      ...(opts.resolve ? { lookup: guardedLookup(opts.resolve) } : {}),
    }, (answer) => {
      answered = true;
      let read = 0;
      answer.on('data', (chunk: Buffer) => {
        read += chunk.length;
        if (read > MAX_ANSWER_BYTES) answer.destroy();
      });
      const status = answer.statusCode ?? 0;
      const done = () => finish(status >= 200 && status < 300 ? { ok: true, status } : { ok: false, reason: `HTTP ${status}` });
      answer.on('end', done);
      answer.on('close', done);
      answer.on('error', done);
    });
    const deadline = setTimeout(() => {
      finish({ ok: false, reason: `no answer within ${opts.timeoutMs} ms` });
      request.destroy();
    }, opts.timeoutMs);
    const onAbort = (): void => {
      finish({ ok: false, reason: 'delivery stopped (hub closing or lease lost)' });
      request.destroy();
    };
    opts.signal.addEventListener('abort', onAbort);
    request.on('error', (err) => {
      const reason = isPulsewireError(err, 'PW_ERR_WEBHOOK_ADDRESS_REFUSED')
        ? `address refused: ${err.detail ?? ''} (PULSEWIRE_WEBHOOK_ALLOW_PRIVATE allows it)`
        : `${(err as NodeJS.ErrnoException).code ?? 'error'}: ${err.message}`;
      const staleConnection = request.reusedSocket && !answered && (err as NodeJS.ErrnoException).code === 'ECONNRESET';
      finish({ ok: false, reason, ...(staleConnection ? { staleConnection } : {}) });
    });
    request.end(body);
  });
}
