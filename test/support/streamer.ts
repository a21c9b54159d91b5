/**
 * A device that streams TELEMETRY the way protocol-v1 asks firmware to: at
 * most 32 unacknowledged messages, every message kept (as bytes) until ACK
 * 0/1, resent byte for byte after a reconnect or an ACK 4. Message i carries
 * one reading `s` with value i, so InfluxDB can be checked for exactly
 * 0..n-1, each once.
 */
import { Encoder } from 'cbor-x';
import { decodeHubFrame } from '../../src/protocol/codec.js';
import { TestDevice } from './device-client.js';

const cbor = new Encoder({ useRecords: false, mapsAsObjects: false, tagUint8Array: false, variableMapSize: true });

export type AckRecord = { seq: number; code: number; at: number };

export class Streamer {
  readonly id: string;
  /** Seconds since the epoch for message 0; undefined: relative times (resolved at receipt). */
  readonly #t0: number | undefined;
  readonly #unacked = new Map<number, Buffer>();
  /** Every frame ever sent, to resend acknowledged ones on purpose. */
  readonly #frames = new Map<number, Buffer>();
  readonly acks: AckRecord[] = [];
  readonly accepted = new Set<number>();
  #device: TestDevice | undefined;
  #nextSeq = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(id: string, options: { absoluteFrom?: number } = {}) {
    this.id = id;
    this.#t0 = options.absoluteFrom;
  }

  get sent(): number {
    return this.#nextSeq;
  }

  get unacked(): number {
    return this.#unacked.size;
  }

  frame(seq: number): Buffer | undefined {
    return this.#frames.get(seq);
  }

  async connect(url: string): Promise<void> {
    const device = await TestDevice.connect(url, { id: this.id });
    this.#device = device;
    device.socket.on('message', (data) => {
      const message = decodeHubFrame(new Uint8Array(data as Buffer));
      if (message instanceof Error || message.type !== 2) return;
      const code = message.code ?? 0;
      this.acks.push({ seq: message.seq, code, at: Date.now() });
      if (code === 0 || code === 1) {
        this.#unacked.delete(message.seq);
        this.accepted.add(message.seq);
      }
    });
    // Protocol 3: unacknowledged messages are resent, byte for byte, after a reconnect.
    for (const bytes of this.#unacked.values()) device.send(bytes);
  }

  /** Sends a new message every `intervalMs` while fewer than 32 are unacknowledged. */
  start(intervalMs: number, limit = Infinity): void {
    this.#timer = setInterval(() => {
      if (this.#nextSeq >= limit || this.#unacked.size >= 32 || !this.isOpen) return;
      this.sendNew();
    }, intervalMs);
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  get isOpen(): boolean {
    return this.#device?.socket.readyState === this.#device?.socket.OPEN;
  }

  sendNew(): number {
    const seq = this.#nextSeq++;
    const record = new Map<number, unknown>([[0, 's'], [2, seq]]);
    if (this.#t0 !== undefined) record.set(6, this.#t0 + seq / 1000);
    const bytes = Buffer.from(cbor.encode([1, seq, [record]]));
    this.#unacked.set(seq, bytes);
    this.#frames.set(seq, bytes);
    this.#device!.send(bytes);
    return seq;
  }

  /** Resends every kept message (after ACK 4: the hub asked for it later). */
  resendUnacked(): void {
    for (const bytes of this.#unacked.values()) this.#device!.send(bytes);
  }

  /** Resends an already acknowledged message (a device that lost the ACK). */
  resendRaw(bytes: Buffer): void {
    this.#device!.send(bytes);
  }

  async waitAllAccepted(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let lastResend = Date.now();
    while (this.#unacked.size > 0) {
      if (Date.now() > deadline) throw new Error(`${this.#unacked.size} of ${this.#nextSeq} messages still unacknowledged`);
      // Messages answered ACK 4 wait for a resend; a firmware would back off and resend too.
      if (Date.now() - lastResend > 500 && this.isOpen) {
        const answered4 = [...this.#unacked.keys()].filter((seq) => this.acks.some((a) => a.seq === seq && a.code === 4));
        for (const seq of answered4) this.#device!.send(this.#unacked.get(seq)!);
        lastResend = Date.now();
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async close(): Promise<void> {
    this.stop();
    await this.#device?.close();
  }

  /** Drops the connection without a close handshake (what a hub crash looks like from the device). */
  get socketClosed(): Promise<unknown> {
    return this.#device!.closed;
  }
}
