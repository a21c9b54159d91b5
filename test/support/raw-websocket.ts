/**
 * A WebSocket client over a bare TCP socket, for what a library client
 * hides: the extensions the hub answers in its 101, and each frame's RSV1
 * bit and payload as they crossed the wire (RFC 6455 section 5.2, RFC 7692
 * permessage-deflate). Received continuation frames are kept as they are.
 *
 * It also sends what a library client refuses to: any header bits, opcode,
 * mask or length (`sendFrame`, `rawFrame`), for the attacks of
 * test/security/raw-frames.test.ts, and tells how the hub ended the
 * connection (`ended`: its close frame, if any, and the TCP close).
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import zlib from 'node:zlib';

export type WireFrame = { fin: boolean; rsv1: boolean; opcode: number; payload: Buffer };

export const Opcode = { CONTINUATION: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa } as const;

/** One frame as sent, every field free: RFC 6455 5.2 allows none of the odd combinations, which is the point. */
export type FrameSpec = {
  opcode: number;
  payload?: Uint8Array;
  /** Default true. */
  fin?: boolean;
  /** RSV1..RSV3 as the bits 0x40, 0x20, 0x10 of the first byte. */
  rsv?: number;
  /** Default true: a client must mask (RFC 6455 5.1). */
  masked?: boolean;
  /** Announce this length instead of the payload's (a 64-bit length past 2^53, a lie). */
  announcedLength?: bigint;
};

/** The bytes of one frame as `spec` says, masked with a random key unless told otherwise. */
export function rawFrame(spec: FrameSpec): Buffer {
  const payload = Buffer.from(spec.payload ?? new Uint8Array(0));
  const masked = spec.masked ?? true;
  const length = spec.announcedLength ?? BigInt(payload.length);
  const first = ((spec.fin ?? true) ? 0x80 : 0) | ((spec.rsv ?? 0) & 0x70) | (spec.opcode & 0x0f);
  const maskBit = masked ? 0x80 : 0;
  let head: Buffer;
  if (length < 126n) head = Buffer.from([first, maskBit | Number(length)]);
  else if (length < 65_536n) {
    head = Buffer.from([first, maskBit | 126, 0, 0]);
    head.writeUInt16BE(Number(length), 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = first;
    head[1] = maskBit | 127;
    head.writeBigUInt64BE(length, 2);
  }
  if (!masked) return Buffer.concat([head, payload]);
  const mask = randomBytes(4);
  for (let i = 0; i < payload.length; i++) payload[i]! ^= mask[i % 4]!;
  return Buffer.concat([head, mask, payload]);
}

/** A close frame's payload: the code, then the reason's bytes as given (valid UTF-8 or not). */
export function closePayload(code: number, reason: Uint8Array = new Uint8Array(0)): Buffer {
  const out = Buffer.alloc(2 + reason.length);
  out.writeUInt16BE(code, 0);
  out.set(reason, 2);
  return out;
}

/** How a connection ended: the hub's close frame (code and reason), if it sent one, once TCP is closed. */
export type Ending = { closeCode: number | undefined; closeReason: string | undefined };

/** RFC 7692 7.2.1: a message compressed alone, without the final empty block's 00 00 ff ff. */
export function deflateMessage(message: Uint8Array): Buffer {
  const out = zlib.deflateRawSync(message, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  if (!out.subarray(-4).equals(Buffer.from([0x00, 0x00, 0xff, 0xff]))) throw new Error('deflate did not end with an empty stored block');
  return out.subarray(0, out.length - 4);
}

/** RFC 7692 7.2.2, for a message compressed without context takeover. */
export function inflateMessage(payload: Buffer): Buffer {
  return zlib.inflateRawSync(Buffer.concat([payload, Buffer.from([0x00, 0x00, 0xff, 0xff])]), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
}

export class RawWebSocket {
  readonly status: number;
  /** Response headers of the handshake, names lower-cased. */
  readonly headers: Record<string, string>;
  readonly frames: WireFrame[] = [];
  /** Resolves once the TCP connection is closed, by either side. */
  readonly ended: Promise<Ending>;
  readonly #socket: net.Socket;
  #buffer: Buffer;
  #wake: (() => void) | undefined;

  private constructor(socket: net.Socket, status: number, headers: Record<string, string>, rest: Buffer) {
    this.#socket = socket;
    this.status = status;
    this.headers = headers;
    this.#buffer = rest;
    this.ended = new Promise((resolve) => socket.once('close', () => {
      const close = this.frames.find((f) => f.opcode === Opcode.CLOSE);
      resolve({
        closeCode: close && close.payload.length >= 2 ? close.payload.readUInt16BE(0) : undefined,
        closeReason: close ? close.payload.subarray(2).toString('utf8') : undefined,
      });
    }));
    // A reset by the hub (it terminated us) is an ending like any other, not an error of the test.
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => this.#read(chunk));
    this.#read(Buffer.alloc(0));
  }

  /** Sends the upgrade request to ws://host:port/path with `headers` added; resolves once the answer's head is in. */
  static connect(host: string, port: number, path: string, headers: Record<string, string>): Promise<RawWebSocket> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, host);
      let head = Buffer.alloc(0);
      const onData = (chunk: Buffer) => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        socket.off('data', onData);
        const [statusLine, ...lines] = head.subarray(0, end).toString('latin1').split('\r\n');
        const answer: Record<string, string> = {};
        for (const line of lines) {
          const colon = line.indexOf(':');
          answer[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
        }
        resolve(new RawWebSocket(socket, Number(statusLine!.split(' ')[1]), answer, head.subarray(end + 4)));
      };
      socket.on('data', onData);
      socket.once('error', reject);
      socket.once('connect', () => {
        const request = [
          `GET ${path} HTTP/1.1`, `Host: ${host}:${port}`, 'Upgrade: websocket', 'Connection: Upgrade',
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`, 'Sec-WebSocket-Version: 13',
          ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
        ];
        socket.write(`${request.join('\r\n')}\r\n\r\n`);
      });
    });
  }

  /** One final binary frame, masked as a client must; `rsv1` marks its payload as compressed. */
  sendBinary(payload: Uint8Array, rsv1 = false): void {
    this.sendFrame({ opcode: Opcode.BINARY, payload, rsv: rsv1 ? 0x40 : 0 });
  }

  /** Sends one frame exactly as `spec` says; false when the socket's buffer is full (wait for `drained()`). */
  sendFrame(spec: FrameSpec): boolean {
    return this.#socket.write(rawFrame(spec));
  }

  /** Sends bytes as they are: several frames at once, or part of one. */
  sendBytes(bytes: Uint8Array): boolean {
    return this.#socket.write(bytes);
  }

  /** Resolves when the socket's write buffer has drained, or the connection is gone. */
  drained(): Promise<void> {
    if (!this.#socket.writableNeedDrain || this.#socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => { this.#socket.off('drain', done); this.#socket.off('close', done); resolve(); };
      this.#socket.once('drain', done);
      this.#socket.once('close', done);
    });
  }

  /** Stops (or starts again) reading what the hub sends, so its writes back up in the kernel. */
  pauseReading(): void {
    this.#socket.pause();
  }

  get isDestroyed(): boolean {
    return this.#socket.destroyed;
  }

  /** Answers the hub's close frame as RFC 6455 5.5.1 asks (echo its code), then ends TCP. */
  closeAfterHub(): void {
    const close = this.frames.find((f) => f.opcode === Opcode.CLOSE);
    if (close && !this.#socket.destroyed) this.#socket.end(rawFrame({ opcode: Opcode.CLOSE, payload: close.payload.subarray(0, 2) }));
    else this.#socket.destroy();
  }

  /** The next data frame (ping/pong/close are kept in `frames` but skipped here). */
  nextDataFrame(timeoutMs = 10_000): Promise<WireFrame> {
    return this.nextFrame((f) => f.opcode < 0x8, timeoutMs);
  }

  /** The first received frame that matches, taken out of `frames`. */
  async nextFrame(match: (frame: WireFrame) => boolean, timeoutMs = 10_000): Promise<WireFrame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.frames.findIndex(match);
      if (index >= 0) return this.frames.splice(index, 1)[0]!;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching frame within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => { clearTimeout(timer); this.#wake = undefined; resolve(); };
      });
    }
  }

  close(): void {
    this.#socket.destroy();
  }

  #read(chunk: Buffer): void {
    this.#buffer = Buffer.concat([this.#buffer, chunk]);
    for (;;) {
      const b = this.#buffer;
      if (b.length < 2) return;
      let length = b[1]! & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (b.length < 4) return;
        length = b.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (b.length < 10) return;
        length = Number(b.readBigUInt64BE(2));
        offset = 10;
      }
      // A server never masks (RFC 6455 5.1), so no mask key follows.
      if (b.length < offset + length) return;
      this.frames.push({ fin: (b[0]! & 0x80) !== 0, rsv1: (b[0]! & 0x40) !== 0, opcode: b[0]! & 0x0f, payload: b.subarray(offset, offset + length) });
      this.#buffer = b.subarray(offset + length);
      this.#wake?.();
    }
  }
}
