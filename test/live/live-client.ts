/**
 * Operator-side clients for the live stream tests: a WebSocket client that
 * queues the hub's JSON frames, and an SSE reader over a plain HTTP request
 * (no EventSource in Node 20), both with real sockets; over TLS too, given
 * the test CA (`ca`).
 */
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import WebSocket from 'ws';
import { encodeTelemetry } from '../../src/protocol/encode.js';
import { OPERATOR_TOKEN } from '../support/hub.js';
import { WAIT_CEILING_MS } from '../support/wait.js';

export type Frame = { type: string; seq?: number; [key: string]: any };
export type Refusal = { status: number; body: string };

/** Waits for frames in arrival order; `next(match)` skips (and keeps in `seen`) the ones that do not match. */
class FrameQueue {
  readonly seen: Frame[] = [];
  readonly #queue: Frame[] = [];
  #waiter: (() => void) | undefined;

  push(frame: Frame): void {
    this.seen.push(frame);
    this.#queue.push(frame);
    this.#waiter?.();
  }

  async next(match: (f: Frame) => boolean = () => true, timeoutMs = WAIT_CEILING_MS): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.#queue.length > 0) {
        const frame = this.#queue.shift()!;
        if (match(frame)) return frame;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching live frame within ${timeoutMs} ms (saw ${this.seen.length})`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiter = () => { clearTimeout(timer); this.#waiter = undefined; resolve(); };
      });
    }
  }
}

export class LiveClient extends FrameQueue {
  readonly socket: WebSocket;
  readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(socket: WebSocket) {
    super();
    this.socket = socket;
    this.closed = new Promise((resolve) => socket.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    socket.on('message', (data) => this.push(JSON.parse(data.toString())));
  }

  /** Bearer token by default; `headers` replaces the credentials (cookie, origin, nothing). */
  static connect(baseUrl: string, headers: Record<string, string> = { authorization: `Bearer ${OPERATOR_TOKEN}` }, tls: { ca?: Buffer } = {}): Promise<LiveClient> {
    const socket = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/v1/live`, { headers, ...tls });
    return new Promise((resolve, reject) => {
      socket.once('unexpected-response', (_req, res: IncomingMessage) => {
        let body = '';
        res.on('data', (chunk) => { body += chunk; });
        res.on('end', () => reject({ status: res.statusCode ?? 0, body } satisfies Refusal));
      });
      socket.once('open', () => resolve(new LiveClient(socket)));
      socket.once('error', reject);
    });
  }

  send(message: unknown): void {
    this.socket.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  async close(): Promise<void> {
    if (this.socket.readyState === WebSocket.CLOSED) return;
    this.socket.close(1000);
    await this.closed;
  }
}

export type SseEvent = Frame & { id?: string };

export class SseClient extends FrameQueue {
  readonly response: IncomingMessage;
  #buffer = '';

  private constructor(response: IncomingMessage) {
    super();
    this.response = response;
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => this.#parse(chunk));
  }

  static open(baseUrl: string, query = '', headers: Record<string, string> = { authorization: `Bearer ${OPERATOR_TOKEN}` }, tls: { ca?: Buffer } = {}): Promise<SseClient | Refusal> {
    return new Promise((resolve, reject) => {
      const get = baseUrl.startsWith('https:') ? https.get : http.get;
      const req = get(`${baseUrl}/v1/live/sse${query}`, { headers, ...tls }, (res) => {
        if (res.statusCode !== 200) {
          let body = '';
          res.on('data', (chunk) => { body += chunk; });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          return;
        }
        resolve(new SseClient(res));
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
      const block = this.#buffer.slice(0, end);
      this.#buffer = this.#buffer.slice(end + 2);
      let id: string | undefined;
      let data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('id: ')) id = line.slice(4);
        else if (line.startsWith('data: ')) data += line.slice(6);
      }
      if (data) this.push({ ...JSON.parse(data), ...(id === undefined ? {} : { id }) });
    }
  }
}

/** A TELEMETRY message of one reading per name, at `tSeconds` (absolute epoch seconds). */
export function telemetry(seq: number, readings: Record<string, number>, tSeconds = Date.now() / 1000): Uint8Array {
  return encodeTelemetry(seq, Object.entries(readings).map(([n, v]) => ({ n, v, t: tSeconds })));
}
