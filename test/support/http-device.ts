/**
 * A minimal HTTP fallback device for tests (protocol section 8), over real
 * HTTP with fetch: POST a CBOR array of messages, GET with ?wait to long-poll.
 */
import { encodeHead } from '../../src/protocol/cbor-encode.js';
import { decodeCbor } from '../../src/protocol/cbor-decode.js';
import { decodeHubFrame, encodeCbor } from '../../src/protocol/index.js';
import type { HubMessage } from '../../src/protocol/messages.js';
import { enrollmentSecret } from './device-client.js';

export type HttpAnswer = { status: number; hex: string; messages: HubMessage[]; json: any; headers: Headers };

/** A CBOR array whose elements are these exact message encodings (a batch body). */
export function batch(...messages: Uint8Array[]): Uint8Array {
  return Buffer.concat([encodeHead(4, messages.length), ...messages]);
}

export function basic(id: string, secret = enrollmentSecret(id)): string {
  return `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
}

export class HttpDevice {
  constructor(readonly baseUrl: string, readonly id: string, readonly secret = enrollmentSecret(id)) {}

  get url(): string {
    return `${this.baseUrl}/v1/device/messages`;
  }

  post(body: Uint8Array, headers: Record<string, string> = {}): Promise<HttpAnswer> {
    return this.#request('POST', this.url, {
      body,
      headers: { authorization: basic(this.id, this.secret), 'content-type': 'application/cbor', ...headers },
    });
  }

  poll(waitS?: number, signal?: AbortSignal): Promise<HttpAnswer> {
    const url = waitS === undefined ? this.url : `${this.url}?wait=${waitS}`;
    return this.#request('GET', url, { headers: { authorization: basic(this.id, this.secret) }, ...(signal ? { signal } : {}) });
  }

  async #request(method: string, url: string, init: RequestInit): Promise<HttpAnswer> {
    const res = await fetch(url, { method, ...init });
    const bytes = new Uint8Array(await res.arrayBuffer());
    const answer: HttpAnswer = { status: res.status, hex: Buffer.from(bytes).toString('hex'), messages: [], json: undefined, headers: res.headers };
    if (res.headers.get('content-type')?.startsWith('application/json')) {
      answer.json = JSON.parse(Buffer.from(bytes).toString('utf8'));
    } else if (res.status === 200) {
      const decoded = decodeCbor(bytes);
      if (decoded instanceof Error || !Array.isArray(decoded.value)) throw new Error(`not a CBOR array: ${answer.hex}`);
      // Each element decoded as a WebSocket frame would be: the same bytes, the same rules.
      answer.messages = decoded.value.map((item) => {
        const message = decodeHubFrame(encodeCbor(item));
        if (message instanceof Error) throw message;
        return message;
      });
    }
    return answer;
  }
}
