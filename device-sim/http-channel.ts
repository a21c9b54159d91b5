/**
 * `--transport http`: a device on the HTTP fallback (protocol section 8),
 * behind the few WebSocket members SimDevice uses (on, send, close,
 * terminate, readyState), so the device's window, resends, commands and
 * backoff work unchanged over either transport.
 *
 * - "open" is the first GET answering 200 (a refusal becomes the same
 *   "Unexpected server response: N" error ws gives, so backoff reads it alike).
 * - send() queues; one POST at a time carries everything queued as one batch.
 *   Its answer (ACKs, then COMMAND/DESIRED) is handed over message by message.
 *   429 puts the batch back and waits Retry-After; a 400 ends the channel with
 *   1007 (a firmware bug, as on the socket); a network error or 5xx with 1006,
 *   after which the device reconnects and resends its window.
 * - A long poll (GET ?wait=pollWaitS) runs all the time the channel is open.
 */
import { EventEmitter } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import { arrayElementSpans } from '../src/protocol/cbor-scan.js';
import { MAX_BATCH_DEPTH } from '../src/protocol/limits.js';
import { encodeHead } from '../src/protocol/cbor-encode.js';

export type HttpChannelOptions = {
  /** http(s)://host:port/v1/device/messages */
  url: string;
  headers: Record<string, string>;
  ca?: Buffer | string | (Buffer | string)[] | undefined;
  localAddress?: string | undefined;
  /** Long-poll wait in seconds (protocol: at most 60). */
  pollWaitS: number;
};

type Answer = { status: number; body: Buffer; retryAfterS: number };

/** ws's readyState values. */
const CONNECTING = 0;
const OPEN = 1;
const CLOSED = 3;

/** The HTTP fallback endpoint for a device URL given as ws(s)://host/v1/device or http(s)://host[/...]. */
export function httpEndpoint(url: string): string {
  const u = new URL(url);
  u.protocol = u.protocol === 'wss:' || u.protocol === 'https:' ? 'https:' : 'http:';
  if (u.pathname === '/' || u.pathname === '') u.pathname = '/v1/device/messages';
  else if (u.pathname.endsWith('/v1/device')) u.pathname += '/messages';
  return u.toString();
}

export class HttpChannel extends EventEmitter {
  readyState = CONNECTING;
  binaryType = 'nodebuffer';
  readonly #opts: HttpChannelOptions;
  readonly #abort = new AbortController();
  #queue: Uint8Array[] = [];
  #posting = false;
  #retryTimer: NodeJS.Timeout | undefined;

  constructor(opts: HttpChannelOptions) {
    super();
    this.#opts = opts;
    setImmediate(() => void this.#start());
  }

  send(bytes: Uint8Array): void {
    if (this.readyState !== OPEN) return;
    this.#queue.push(bytes);
    if (!this.#posting && !this.#retryTimer) setImmediate(() => void this.#post());
  }

  /** Sends what is queued (a RESULT before a reboot), then ends with `code`. */
  close(code = 1000, _reason = ''): void {
    if (this.readyState === CLOSED) return;
    const deadline = Date.now() + 5_000;
    const finish = () => {
      if ((this.#queue.length > 0 || this.#posting) && Date.now() < deadline && this.readyState === OPEN) {
        setTimeout(finish, 20);
        return;
      }
      this.#end(code);
    };
    finish();
  }

  terminate(): void {
    this.#end(1006);
  }

  async #start(): Promise<void> {
    let answer: Answer;
    try {
      answer = await this.#request('GET', undefined, 0);
    } catch (err) {
      if (this.readyState === CLOSED) return;
      this.emit('error', err);
      return this.#end(1006);
    }
    if (answer.status !== 200) {
      this.emit('error', new Error(`Unexpected server response: ${answer.status}`));
      return this.#end(1006);
    }
    this.readyState = OPEN;
    this.emit('open');
    this.#deliver(answer.body);
    void this.#pollLoop();
  }

  async #pollLoop(): Promise<void> {
    while (this.readyState === OPEN) {
      try {
        const answer = await this.#request('GET', undefined, this.#opts.pollWaitS);
        if (answer.status === 200) this.#deliver(answer.body);
        else if (answer.status === 429) await this.#sleep(answer.retryAfterS * 1000);
        else return this.#end(answer.status === 401 ? 1008 : 1006);
      } catch {
        return this.#end(1006);
      }
    }
  }

  async #post(): Promise<void> {
    if (this.#posting || this.readyState !== OPEN || this.#queue.length === 0) return;
    this.#posting = true;
    const messages = this.#queue;
    this.#queue = [];
    try {
      const answer = await this.#request('POST', Buffer.concat([encodeHead(4, messages.length), ...messages]), undefined);
      if (answer.status === 200) {
        this.#deliver(answer.body);
      } else if (answer.status === 429) {
        this.#queue = [...messages, ...this.#queue];
        this.#retryTimer = setTimeout(() => { this.#retryTimer = undefined; void this.#post(); }, answer.retryAfterS * 1000);
      } else {
        this.#end(answer.status === 400 || answer.status === 413 ? 1007 : answer.status === 401 ? 1008 : 1006);
      }
    } catch {
      this.#end(1006);
    } finally {
      this.#posting = false;
    }
    if (this.#queue.length > 0 && !this.#retryTimer) void this.#post();
  }

  /** Each element of the answer array (one level deeper than a frame), as the bytes of one WebSocket frame. */
  #deliver(body: Buffer): void {
    for (const { start, end } of arrayElementSpans(body, { maxDepth: MAX_BATCH_DEPTH }) ?? []) {
      if (this.readyState !== OPEN) return;
      this.emit('message', body.subarray(start, end), true);
    }
  }

  #end(code: number): void {
    if (this.readyState === CLOSED) return;
    const wasOpen = this.readyState === OPEN;
    this.readyState = CLOSED;
    clearTimeout(this.#retryTimer);
    this.#abort.abort();
    setImmediate(() => this.emit('close', wasOpen ? code : 1006, Buffer.alloc(0)));
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  #request(method: 'GET' | 'POST', body: Buffer | undefined, waitS: number | undefined): Promise<Answer> {
    const url = new URL(this.#opts.url);
    if (waitS !== undefined) url.searchParams.set('wait', String(waitS));
    const client = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = client.request(url, {
        method,
        signal: this.#abort.signal,
        headers: { ...this.#opts.headers, ...(body ? { 'content-type': 'application/cbor', 'content-length': String(body.length) } : {}) },
        ...(this.#opts.ca ? { ca: this.#opts.ca } : {}),
        ...(this.#opts.localAddress ? { localAddress: this.#opts.localAddress } : {}),
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({
          status: res.statusCode ?? 0,
          body: Buffer.concat(chunks),
          retryAfterS: Math.max(1, Number(res.headers['retry-after']) || 1),
        }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  }
}
