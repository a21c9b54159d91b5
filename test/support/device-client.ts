/**
 * A minimal device for tests, written from protocol-v1.md: Basic credentials,
 * the pulsewire.v1 subprotocol, binary CBOR frames, and a queue of decoded
 * hub messages to await.
 */
import { createHmac } from 'node:crypto';
import type { ClientRequest, IncomingMessage } from 'node:http';
import WebSocket from 'ws';
import { decodeHubFrame } from '../../src/protocol/codec.js';
import type { HubMessage } from '../../src/protocol/messages.js';
import { ENROLLMENT_KEY } from './hub.js';
import { WAIT_CEILING_MS } from './wait.js';

export type Refusal = { status: number; body: string; headers: IncomingMessage['headers'] };

export type ConnectOptions = {
  id?: string;
  secret?: string;
  protocols?: string[];
  headers?: Record<string, string>;
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  /** Source address of the connection (another loopback address looks like another host). */
  localAddress?: string;
  /** Answer the hub's pings (default true); false makes a zombie. */
  autoPong?: boolean;
  /** Hears the hub's pings from the first byte on (a listener added after open can miss one sent with the 101). */
  onPing?: () => void;
};

export function enrollmentSecret(deviceId: string, key = ENROLLMENT_KEY): string {
  return createHmac('sha256', key).update(deviceId).digest('base64url');
}

export class TestDevice {
  readonly socket: WebSocket;
  readonly closed: Promise<{ code: number; reason: string }>;
  /** Every frame the hub sent, as hex, for byte-exact assertions. */
  readonly rawFrames: string[] = [];
  readonly #queue: HubMessage[] = [];
  readonly #waiters: ((m: HubMessage) => void)[] = [];

  private constructor(socket: WebSocket) {
    this.socket = socket;
    this.closed = new Promise((resolve) => socket.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    socket.on('message', (data) => {
      this.rawFrames.push((data as Buffer).toString('hex'));
      const message = decodeHubFrame(new Uint8Array(data as Buffer));
      if (message instanceof Error) throw message;
      const waiter = this.#waiters.shift();
      if (waiter) waiter(message);
      else this.#queue.push(message);
    });
  }

  /** Opens a connection; rejects with a Refusal when the hub answers the handshake with an HTTP error. */
  static connect(url: string, opts: ConnectOptions = {}): Promise<TestDevice> {
    const id = opts.id ?? 'dev-1';
    const secret = opts.secret ?? enrollmentSecret(id);
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.id !== undefined || opts.secret !== undefined || !opts.tls?.cert) {
      headers.authorization ??= `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
    }
    const socket = new WebSocket(url, opts.protocols ?? ['pulsewire.v1'], {
      headers,
      autoPong: opts.autoPong ?? true,
      ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
      ...(opts.tls ?? {}),
    });
    if (opts.onPing) socket.on('ping', opts.onPing);
    return new Promise((resolve, reject) => {
      socket.once('unexpected-response', (_req: ClientRequest, res: IncomingMessage) => {
        let body = '';
        res.on('data', (chunk) => { body += chunk; });
        res.on('end', () => reject({ status: res.statusCode ?? 0, body, headers: res.headers } satisfies Refusal));
      });
      socket.once('open', () => resolve(new TestDevice(socket)));
      socket.once('error', (err) => reject(err));
    });
  }

  send(bytes: Uint8Array | string): void {
    this.socket.send(bytes, { binary: typeof bytes !== 'string' });
  }

  sendHex(hex: string): void {
    this.send(Buffer.from(hex, 'hex'));
  }

  next(timeoutMs = WAIT_CEILING_MS): Promise<HubMessage> {
    const queued = this.#queue.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no hub message within ${timeoutMs} ms`)), timeoutMs);
      this.#waiters.push((m) => { clearTimeout(timer); resolve(m); });
    });
  }

  async close(): Promise<void> {
    if (this.socket.readyState === WebSocket.CLOSED) return;
    this.socket.close(1000);
    await this.closed;
  }
}
