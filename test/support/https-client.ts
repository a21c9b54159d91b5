/**
 * Operator-side clients over TLS that trust a test CA, through real sockets:
 * node's fetch cannot be given a CA, so requests go through node:https, the
 * live stream through ws with `ca`, and SSE through a streaming https GET.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import https from 'node:https';
import WebSocket from 'ws';

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

export type LiveFrame = { type: string; [key: string]: any };

/** Frames in arrival order; `next(match)` skips the ones that do not match. */
class FrameInbox {
  readonly #frames: LiveFrame[] = [];
  #wake: (() => void) | undefined;

  protected push(frame: LiveFrame): void {
    this.#frames.push(frame);
    this.#wake?.();
  }

  async next(match: (frame: LiveFrame) => boolean = () => true, timeoutMs = 10_000): Promise<LiveFrame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.#frames.findIndex(match);
      if (index >= 0) return this.#frames.splice(0, index + 1).at(-1)!;
      this.#frames.length = 0;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching live frame within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => { clearTimeout(timer); this.#wake = undefined; resolve(); };
      });
    }
  }
}

export type Refused = { status: number; body: string };

/** The live stream over wss (`/v1/live`); rejects with the status and body of a refused upgrade. */
export class WssLive extends FrameInbox {
  private constructor(readonly socket: WebSocket) {
    super();
    socket.on('message', (data) => this.push(JSON.parse(data.toString())));
  }

  static connect(baseUrl: string, ca: Buffer, headers: Record<string, string>): Promise<WssLive> {
    const socket = new WebSocket(`${baseUrl.replace(/^https/, 'wss')}/v1/live`, { ca, headers });
    return new Promise((resolve, reject) => {
      socket.once('unexpected-response', (_req, res: IncomingMessage) => {
        let body = '';
        res.on('data', (chunk) => { body += chunk; });
        res.on('end', () => reject({ status: res.statusCode ?? 0, body } satisfies Refused));
      });
      socket.once('open', () => resolve(new WssLive(socket)));
      socket.once('error', reject);
    });
  }

  async close(): Promise<void> {
    if (this.socket.readyState === WebSocket.CLOSED) return;
    const closed = new Promise((resolve) => this.socket.once('close', resolve));
    this.socket.close(1000);
    await closed;
  }
}

/** The live stream as Server-Sent Events over https (`/v1/live/sse`). */
export class HttpsSse extends FrameInbox {
  #buffer = '';

  private constructor(readonly response: IncomingMessage) {
    super();
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => this.#parse(chunk));
  }

  static open(baseUrl: string, ca: Buffer, headers: Record<string, string>): Promise<HttpsSse> {
    return new Promise((resolve, reject) => {
      const req = https.get(`${baseUrl}/v1/live/sse`, { ca, headers }, (res) => {
        if (res.statusCode === 200) return resolve(new HttpsSse(res));
        let body = '';
        res.on('data', (chunk) => { body += chunk; });
        res.on('end', () => reject({ status: res.statusCode ?? 0, body } satisfies Refused));
      });
      req.on('error', reject);
    });
  }

  close(): void {
    this.response.destroy();
  }

  #parse(chunk: string): void {
    this.#buffer += chunk;
    let end: number;
    while ((end = this.#buffer.indexOf('\n\n')) >= 0) {
      const data = this.#buffer.slice(0, end).split('\n').filter((line) => line.startsWith('data: ')).map((line) => line.slice(6)).join('');
      this.#buffer = this.#buffer.slice(end + 2);
      if (data) this.push(JSON.parse(data));
    }
  }
}
