/**
 * A device client written from the protocol's text only, the way firmware
 * would: the contract (protocol v1, sections 1-8) and the hub's
 * documentation of it (docs/protocol.md, with docs/http-fallback.md where
 * that page sends the reader for the HTTP fallback's details). Basic auth
 * per RFC 7617, the `pulsewire.v1` subprotocol, secrets derived from an
 * enrollment key exactly as section 2 words it, one CBOR item per binary
 * frame, its own CBOR codec (./mini-cbor.ts). It never imports the hub's
 * code: a misreading shared by hub and client would otherwise pass.
 *
 * Three flavours:
 *  - SpecDevice: a well-behaved device on the `ws` package (answers pings),
 *    reading ACK, COMMAND and DESIRED and sending TELEMETRY, RESULT and
 *    REPORTED.
 *  - rawHandshake / RawDevice: a hand-rolled RFC 6455 client on node:http,
 *    to see refusals exactly as sent and to play a device that never
 *    answers pings.
 *  - SpecHttpDevice: the HTTP fallback (POST batches, GET long polls).
 */

import { createHash, createHmac, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { Duplex } from 'node:stream';
import WebSocket from 'ws';
import { arrayElements, decode, encode, Raw, type CborValue } from './mini-cbor.js';

export const SUBPROTOCOL = 'pulsewire.v1';

/** Section 2: secret = base64url(HMAC-SHA256(enrollmentKey, deviceId)), unpadded. */
export function enrollmentSecret(enrollmentKey: string, deviceId: string): string {
  return createHmac('sha256', Buffer.from(enrollmentKey, 'utf8'))
    .update(Buffer.from(deviceId, 'utf8'))
    .digest('base64')
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '');
}

/** RFC 7617: "Basic " + base64(user-id ":" password), UTF-8. */
export function basicAuth(deviceId: string, secret: string, scheme = 'Basic'): string {
  return `${scheme} ${Buffer.from(`${deviceId}:${secret}`, 'utf8').toString('base64')}`;
}

// Message types, section 3.
export const TELEMETRY = 1;
export const ACK = 2;
export const COMMAND = 3;
export const RESULT = 4;
export const REPORTED = 5;
export const DESIRED = 6;

export function telemetry(seq: CborValue, pack: CborValue): Buffer {
  return encode([TELEMETRY, seq, pack]);
}

/** RESULT statuses (docs/protocol.md, Messages). */
export const RECEIVED = 0;
export const SUCCEEDED = 1;
export const FAILED = 2;
export const REJECTED = 3;

/** `[4, commandId, status]`, or with a payload `[4, commandId, status, payload]`. */
export function result(commandId: string, status: CborValue, ...payload: [] | [CborValue]): Buffer {
  return encode([RESULT, commandId, status, ...payload]);
}

/** `[5, state]`: a JSON Merge Patch on the reported state. */
export function reported(state: CborValue): Buffer {
  return encode([REPORTED, state]);
}

/** A hub-to-device message, checked against the shapes of docs/protocol.md. */
export type HubMessage =
  | { type: typeof ACK; seq: number; code: number; reason?: string }
  | { type: typeof COMMAND; commandId: string; name: string; args: unknown }
  | { type: typeof DESIRED; version: number; state: Map<unknown, unknown> };

const isUint = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/**
 * Decodes one hub frame and checks its shape; throws, naming what is wrong,
 * on anything the documented shapes do not allow (a hub bug, seen the way
 * firmware would see it).
 */
export function parseHubMessage(bytes: Uint8Array): HubMessage {
  const v = decode(bytes);
  const fail = (why: string) => new Error(`hub sent ${Buffer.from(bytes).toString('hex')}: ${why}`);
  if (!Array.isArray(v) || v.length === 0) throw fail('not a non-empty array');
  switch (v[0]) {
    case ACK: {
      if (v.length < 2 || v.length > 4 || !isUint(v[1])) throw fail('ACK is [2, seq], [2, seq, code] or [2, seq, code, reason]');
      if (v.length >= 3 && !isUint(v[2])) throw fail('ACK code is an unsigned integer');
      if (v.length === 4 && typeof v[3] !== 'string') throw fail('ACK reason is a text string');
      const ack: HubMessage = { type: ACK, seq: v[1], code: (v[2] as number | undefined) ?? 0 };
      if (v.length === 4) ack.reason = v[3] as string;
      return ack;
    }
    case COMMAND: {
      if (v.length !== 4) throw fail('COMMAND is [3, commandId, name, args]');
      const [, commandId, name, args] = v;
      if (typeof commandId !== 'string' || commandId.length < 1 || commandId.length > 36) throw fail('commandId is text of 1 to 36 characters');
      if (typeof name !== 'string') throw fail('command name is a text string');
      return { type: COMMAND, commandId, name, args };
    }
    case DESIRED: {
      if (v.length !== 3 || !isUint(v[1]) || !(v[2] instanceof Map)) throw fail('DESIRED is [6, version, state map]');
      return { type: DESIRED, version: v[1], state: v[2] };
    }
    default:
      throw fail(`type ${String(v[0])} is not a hub-to-device message`);
  }
}

export type Ack = { bytes: Buffer; seq: number; code: number; reason?: string };
export type Closed = { code: number; reason: string };
export type Refusal = { status: number; headers: http.IncomingHttpHeaders; body: string };

function parseAck(bytes: Buffer): Ack | null {
  let v: unknown;
  try {
    v = decode(bytes);
  } catch {
    return null;
  }
  if (!Array.isArray(v) || v[0] !== ACK || typeof v[1] !== 'number') return null;
  const ack: Ack = { bytes, seq: v[1], code: 0 };
  if (v.length >= 3) {
    if (typeof v[2] !== 'number') return null;
    ack.code = v[2];
  }
  if (v.length >= 4 && typeof v[3] === 'string') ack.reason = v[3];
  return ack;
}

/**
 * How long the client waits for something the hub must do (an ACK, a
 * frame, a close): a ceiling for a loaded two-core machine, not a speed
 * claim. A correct hub answers in milliseconds; the wait ends at the event.
 */
export const EVENT_CEILING_MS = 15_000;

export class HandshakeRefused extends Error {
  constructor(readonly refusal: Refusal) {
    super(`handshake refused with HTTP ${refusal.status}: ${refusal.body}`);
  }
}

export type ConnectOptions = {
  /** Subprotocols to offer; default ['pulsewire.v1']. */
  protocols?: string[];
  /** Authorization header value; default Basic from id and secret. */
  authorization?: string | null;
  perMessageDeflate?: boolean;
  timeoutMs?: number;
};

/** A well-behaved device: answers pings (ws does), keeps every frame it receives. */
export class SpecDevice {
  readonly frames: { bytes: Buffer; binary: boolean }[] = [];
  readonly closed: Promise<Closed>;
  private waiters: (() => void)[] = [];
  private closeInfo: Closed | null = null;

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString('utf8') };
        resolve(this.closeInfo);
        this.wake();
      });
    });
    ws.on('message', (data, isBinary) => {
      const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
      this.frames.push({ bytes, binary: isBinary });
      this.wake();
    });
    ws.on('error', () => {
      /* surfaced through close */
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  static connect(url: string, deviceId: string, secret: string, opts: ConnectOptions = {}): Promise<SpecDevice> {
    const headers: Record<string, string> = {};
    const authorization = opts.authorization === undefined ? basicAuth(deviceId, secret) : opts.authorization;
    if (authorization !== null) headers.authorization = authorization;
    const ws = new WebSocket(url, opts.protocols ?? [SUBPROTOCOL], {
      headers,
      perMessageDeflate: opts.perMessageDeflate ?? false,
      handshakeTimeout: opts.timeoutMs ?? EVENT_CEILING_MS,
    });
    const device = new SpecDevice(ws);
    return new Promise((resolve, reject) => {
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => {
          reject(new HandshakeRefused({ status: res.statusCode ?? 0, headers: res.headers, body }));
          ws.terminate();
        });
      });
      ws.once('open', () => resolve(device));
      ws.once('error', (err) => reject(err));
    });
  }

  get protocol(): string {
    return this.ws.protocol;
  }
  get extensions(): string {
    return this.ws.extensions;
  }
  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  send(bytes: Uint8Array): void {
    this.ws.send(bytes, { binary: true });
  }
  sendText(text: string): void {
    this.ws.send(text, { binary: false });
  }
  sendTelemetry(seq: CborValue, pack: CborValue): void {
    this.send(telemetry(seq, pack));
  }

  /** Waits for a frame matching `pick`, consuming it and the frames before it. */
  async next<T>(pick: (f: { bytes: Buffer; binary: boolean }) => T | null, timeoutMs = EVENT_CEILING_MS, what = 'frame'): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.frames.length > 0) {
        const f = this.frames.shift()!;
        const v = pick(f);
        if (v !== null) return v;
      }
      if (this.closeInfo) throw new Error(`connection closed (${this.closeInfo.code} ${this.closeInfo.reason}) while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** The ACK for `seq` (frames that are not that ACK are skipped). */
  ack(seq: number, timeoutMs = EVENT_CEILING_MS): Promise<Ack> {
    return this.next((f) => {
      if (!f.binary) return null;
      const a = parseAck(f.bytes);
      return a && a.seq === seq ? a : null;
    }, timeoutMs, `ACK of seq ${seq}`);
  }

  /** The next ACK, whatever its seq. */
  anyAck(timeoutMs = EVENT_CEILING_MS): Promise<Ack> {
    return this.next((f) => (f.binary ? parseAck(f.bytes) : null), timeoutMs, 'an ACK');
  }

  /** The very next frame, which must be a hub message of a documented shape. */
  message(timeoutMs = EVENT_CEILING_MS, what = 'a hub message'): Promise<HubMessage> {
    return this.next((f) => {
      if (!f.binary) throw new Error(`hub sent a text frame: ${f.bytes.toString('utf8').slice(0, 80)}`);
      return parseHubMessage(f.bytes);
    }, timeoutMs, what);
  }

  /** The next COMMAND; ACKs before it are skipped, a DESIRED is not (order matters). */
  async command(timeoutMs = EVENT_CEILING_MS): Promise<HubMessage & { type: typeof COMMAND; bytes: Buffer }> {
    for (;;) {
      const [m, bytes] = await this.next((f) => (f.binary ? [parseHubMessage(f.bytes), f.bytes] as const : null), timeoutMs, 'a COMMAND');
      if (m.type === COMMAND) return { ...m, bytes };
      if (m.type !== ACK) throw new Error(`expected a COMMAND, got type ${m.type}`);
    }
  }

  /** The next DESIRED; ACKs before it are skipped, a COMMAND is not. */
  async desired(timeoutMs = EVENT_CEILING_MS): Promise<HubMessage & { type: typeof DESIRED; bytes: Buffer }> {
    for (;;) {
      const [m, bytes] = await this.next((f) => (f.binary ? [parseHubMessage(f.bytes), f.bytes] as const : null), timeoutMs, 'a DESIRED');
      if (m.type === DESIRED) return { ...m, bytes };
      if (m.type !== ACK) throw new Error(`expected a DESIRED, got type ${m.type}`);
    }
  }

  /** Resolves with every frame received in `ms` (none expected, typically). */
  async framesWithin(ms: number): Promise<{ bytes: Buffer; binary: boolean }[]> {
    await new Promise((r) => setTimeout(r, ms));
    return this.frames.splice(0);
  }

  /** The close, or a rejection after `timeoutMs`. */
  waitClosed(timeoutMs = EVENT_CEILING_MS): Promise<Closed> {
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([
      this.closed,
      new Promise<Closed>((_, reject) => { timer = setTimeout(() => reject(new Error('timed out waiting for close')), timeoutMs); }),
    ]).finally(() => clearTimeout(timer));
  }

  close(code = 1000, reason = ''): Promise<Closed> {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(code, reason);
    return this.waitClosed();
  }

  terminate(): void {
    this.ws.terminate();
  }
}

/** Connects with a device id and secret, rejecting with HandshakeRefused. */
export function connectDevice(url: string, deviceId: string, secret: string, opts?: ConnectOptions): Promise<SpecDevice> {
  return SpecDevice.connect(url, deviceId, secret, opts);
}

// ------------------------------------------------------------ raw RFC 6455

export type RawResult =
  | ({ upgraded: false } & Refusal)
  | { upgraded: true; status: 101; headers: http.IncomingHttpHeaders; socket: Duplex; head: Buffer; acceptOk: boolean };

/** An RFC 6455 opening handshake by hand: any headers, any outcome. */
export function rawHandshake(url: string, headers: Record<string, string>): Promise<RawResult> {
  const u = new URL(url);
  const key = randomBytes(16).toString('base64');
  return new Promise((resolve, reject) => {
    const req = http.request({
      agent: false, // one TCP connection per attempt, as a device does
      host: u.hostname,
      port: u.port,
      path: u.pathname,
      method: 'GET',
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': key,
        ...headers,
      },
    });
    req.on('upgrade', (res, socket, head) => {
      const expected = createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
      resolve({ upgraded: true, status: 101, headers: res.headers, socket, head, acceptOk: res.headers['sec-websocket-accept'] === expected });
    });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ upgraded: false, status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.setTimeout(EVENT_CEILING_MS, () => req.destroy(new Error('handshake timeout')));
    req.end();
  });
}

export type RawFrame = { opcode: number; fin: boolean; payload: Buffer; at: number };

/**
 * A device on a raw socket that reads frames and never answers anything:
 * in particular no pong to the hub's pings. Records every frame and when
 * the TCP connection ended.
 */
export class RawDevice {
  readonly frames: RawFrame[] = [];
  readonly ended: Promise<number>;
  private buf: Buffer;

  constructor(readonly socket: Duplex, head: Buffer) {
    this.buf = Buffer.from(head);
    this.ended = new Promise((resolve) => {
      socket.once('close', () => resolve(Date.now()));
    });
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      this.buf = Buffer.concat([this.buf, chunk]);
      this.parse();
    });
    this.parse();
  }

  private parse(): void {
    for (;;) {
      if (this.buf.length < 2) return;
      const b0 = this.buf[0]!;
      const b1 = this.buf[1]!;
      let len = b1 & 0x7f;
      let off = 2;
      if (len === 126) {
        if (this.buf.length < 4) return;
        len = this.buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) return;
        len = Number(this.buf.readBigUInt64BE(2));
        off = 10;
      }
      const masked = (b1 & 0x80) !== 0;
      if (masked) off += 4; // a server must not mask; tolerate and record anyway
      if (this.buf.length < off + len) return;
      this.frames.push({ opcode: b0 & 0x0f, fin: (b0 & 0x80) !== 0, payload: this.buf.subarray(off, off + len), at: Date.now() });
      this.buf = this.buf.subarray(off + len);
    }
  }

  destroy(): void {
    this.socket.destroy();
  }
}

export function authHeaders(deviceId: string, secret: string, protocols: string | null = SUBPROTOCOL): Record<string, string> {
  const h: Record<string, string> = { authorization: basicAuth(deviceId, secret) };
  if (protocols !== null) h['sec-websocket-protocol'] = protocols;
  return h;
}

// ------------------------------------------------------------ HTTP fallback

export type HttpAnswer = {
  status: number;
  headers: Headers;
  body: Buffer;
  /** On 200: the encoded bytes of each element of the answer array. */
  elements: Buffer[];
  /** On 200: each element as a hub message. */
  messages: HubMessage[];
  /** On an error: the JSON body's `error` (docs/http-fallback.md, Errors). */
  error?: { code: string; message: string };
};

/**
 * A device on the HTTP fallback (section 8): `POST /v1/device/messages`
 * with a CBOR array of its messages, `GET ...?wait=S` to long-poll, Basic
 * credentials as on the WebSocket.
 */
export class SpecHttpDevice {
  readonly url: string;

  constructor(baseUrl: string, readonly deviceId: string, readonly secret: string) {
    this.url = `${baseUrl}/v1/device/messages`;
  }

  /** A batch: a CBOR array whose elements are these message encodings, byte for byte. */
  static batch(messages: Uint8Array[]): Buffer {
    return encode(messages.map((m) => new Raw(m)));
  }

  post(messages: Uint8Array[], headers: Record<string, string> = {}): Promise<HttpAnswer> {
    return this.postBody(SpecHttpDevice.batch(messages), headers);
  }

  postBody(body: Uint8Array, headers: Record<string, string> = {}): Promise<HttpAnswer> {
    return this.request('POST', this.url, {
      authorization: basicAuth(this.deviceId, this.secret),
      'content-type': 'application/cbor',
      ...headers,
    }, body);
  }

  poll(wait?: number | string, signal?: AbortSignal): Promise<HttpAnswer> {
    const url = wait === undefined ? this.url : `${this.url}?wait=${wait}`;
    return this.request('GET', url, { authorization: basicAuth(this.deviceId, this.secret) }, undefined, signal);
  }

  private async request(method: string, url: string, headers: Record<string, string>, body?: Uint8Array, signal?: AbortSignal): Promise<HttpAnswer> {
    const res = await fetch(url, { method, headers, ...(body ? { body } : {}), ...(signal ? { signal } : {}) });
    const bytes = Buffer.from(await res.arrayBuffer());
    const answer: HttpAnswer = { status: res.status, headers: res.headers, body: bytes, elements: [], messages: [] };
    if (res.status === 200) {
      answer.elements = arrayElements(bytes);
      answer.messages = answer.elements.map(parseHubMessage);
    } else if (res.headers.get('content-type')?.startsWith('application/json')) {
      answer.error = JSON.parse(bytes.toString('utf8')).error;
    }
    return answer;
  }
}

export { decode, encode };
