/**
 * A WebSocket client over a bare TCP socket, for what a library client
 * hides: the extensions the hub answers in its 101, and each frame's RSV1
 * bit and payload as they crossed the wire (RFC 6455 section 5.2, RFC 7692
 * permessage-deflate). Binary frames only; no fragmentation is sent, and
 * received continuation frames are kept as they are.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import zlib from 'node:zlib';

export type WireFrame = { fin: boolean; rsv1: boolean; opcode: number; payload: Buffer };

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
  readonly #socket: net.Socket;
  #buffer: Buffer;
  #wake: (() => void) | undefined;

  private constructor(socket: net.Socket, status: number, headers: Record<string, string>, rest: Buffer) {
    this.#socket = socket;
    this.status = status;
    this.headers = headers;
    this.#buffer = rest;
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
    const mask = randomBytes(4);
    const length = payload.length;
    const head = length < 126 ? Buffer.from([0, 0x80 | length])
      : length < 65_536 ? Buffer.from([0, 0x80 | 126, length >> 8, length & 0xff])
      : Buffer.concat([Buffer.from([0, 0x80 | 127]), (() => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(length)); return b; })()]);
    head[0] = 0x80 | (rsv1 ? 0x40 : 0) | 0x2;
    const masked = Buffer.from(payload);
    for (let i = 0; i < masked.length; i++) masked[i]! ^= mask[i % 4]!;
    this.#socket.write(Buffer.concat([head, mask, masked]));
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
