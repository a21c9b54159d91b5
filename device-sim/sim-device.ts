/**
 * One simulated device: its connection, its window of unacknowledged
 * TELEMETRY, its settings and its reconnect state.
 *
 * No timers of its own: the fleet's scheduler calls tick() every 100 ms and
 * the device does whatever is due (connect, send, resend, chaos). At 50,000
 * devices that is one timer instead of 100,000, and a device that is waiting
 * costs a few numbers. The window holds encoded bytes, because the hub
 * recognises a resend by seq plus identical bytes: re-encoding (new time,
 * new values) would be new data and stored twice.
 */
import WebSocket, { type ClientOptions } from 'ws';
import {
  AckCode, CloseCode, MAX_IN_FLIGHT, ResultStatus, SEQ_MODULUS, SUBPROTOCOL,
  decodeHubFrame, encodeReported, encodeResult, encodeTelemetry,
  type AckMessage, type CommandMessage, type HubMessage,
} from '../src/protocol/index.js';
import { PulsewireError } from '../src/errors/catalog.js';
import { afterEnding, type BackoffTiming, type Ending } from './backoff.js';
import { ChaosRole, exponentialDelay, malformedFrame } from './chaos.js';
import { applyDesired, handleCommand, reportedPatch, type Settings } from './commands.js';
import { HttpChannel, httpEndpoint } from './http-channel.js';
import { buildPack, type Profile } from './profiles/index.js';
import type { Stats } from './stats.js';

/** What every device shares: the fleet provides it once. */
export interface DeviceHost {
  readonly url: string;
  /** ws, or http: the HTTP fallback (http-channel.ts) with a long poll of pollWaitS. */
  readonly transport: 'ws' | 'http';
  readonly pollWaitS: number;
  readonly stats: Stats;
  readonly timing: BackoffTiming;
  readonly random: () => number;
  readonly batch: number;
  readonly clockSkewS: number;
  /** Mean time between chaos events of flapping and malformed devices. */
  readonly chaosMeanMs: { flap: number; malformed: number };
  /** No new TELEMETRY (shutting down); resends and ACKs go on. */
  readonly sending: boolean;
  /** Shutting down: never reconnect. */
  readonly closing: boolean;
  /** A connection that opened and then ended is not made again (benches that time each drop once); failed handshakes still retry. */
  readonly stayDownAfterDrop?: boolean;
  /** Connection options (credentials, TLS, source address) for this device. */
  connectOptions(device: SimDevice): ClientOptions;
  /** Ask for a connection slot; the fleet calls connect() when the ramp allows. */
  enqueue(device: SimDevice): void;
}

type Pending = { seq: number; bytes: Uint8Array; sentAt: number; retryAt: number };

export type DeviceState = 'idle' | 'queued' | 'connecting' | 'open' | 'stopped';

const FIRMWARE = 'sim-1.0.0';

export class SimDevice {
  state: DeviceState = 'idle';
  /** Has tried to connect at least once: an idle device is then waiting to reconnect, not waiting to start. */
  tried = false;
  /** When an idle device next tries to connect (ms since the epoch). */
  wakeAt = 0;
  readonly window: Pending[] = [];
  #socket: WebSocket | undefined;
  #attempt = 0;
  #openedAt = 0;
  #failure: Ending | undefined;
  #seq: number;
  #nextSendAt = 0;
  #lastTimeS = 0;
  #chaosAt = 0;
  #settings: Settings;
  /** commandId of a reboot in progress: RESULT 1 goes out once we are back. */
  #rebootId: string | undefined;
  readonly #profileState: unknown;

  constructor(
    readonly id: string,
    readonly index: number,
    readonly profile: Profile<any>,
    readonly roles: number,
    readonly host: DeviceHost,
    rate: number,
    startSeq = 0,
  ) {
    this.#seq = startSeq >>> 0;
    this.#settings = { intervalS: 1 / rate, led: false };
    this.#profileState = profile.init(host.random, Date.now() / 1000);
  }

  get settings(): Readonly<Settings> {
    return this.#settings;
  }

  get socket(): WebSocket | undefined {
    return this.#socket;
  }

  tick(now: number): void {
    if (this.state === 'idle') {
      if (now >= this.wakeAt && !this.host.closing) {
        this.state = 'queued';
        this.host.enqueue(this);
      }
      return;
    }
    if (this.state !== 'open') return;
    if (this.#chaosAt !== 0 && now >= this.#chaosAt) this.#chaos(now);
    for (const p of this.window) if (p.retryAt !== 0 && now >= p.retryAt) this.#transmit(p, now, true);
    // Catch up at most a window's worth per tick; after a stall, do not fire a burst.
    while (this.host.sending && this.state === 'open' && now >= this.#nextSendAt && this.window.length < MAX_IN_FLIGHT) {
      this.#sendTelemetry(now);
      this.#nextSendAt += this.#settings.intervalS * 1000;
      if (this.#nextSendAt < now - this.#settings.intervalS * 1000) this.#nextSendAt = now;
    }
  }

  connect(): void {
    this.state = 'connecting';
    this.tried = true;
    this.#failure = undefined;
    const ws = this.host.transport === 'http' ? this.#httpChannel() : new WebSocket(this.host.url, SUBPROTOCOL, {
      ...this.host.connectOptions(this),
      autoPong: (this.roles & ChaosRole.ZOMBIE) === 0,
      perMessageDeflate: false,
      handshakeTimeout: 15_000,
    });
    this.#socket = ws;
    ws.binaryType = 'nodebuffer';
    ws.on('open', () => this.#onOpen());
    ws.on('message', (data, isBinary) => this.#onMessage(data as Buffer, isBinary));
    ws.on('error', (err: Error & { code?: string }) => {
      if (this.state === 'open') return this.host.stats.error(`socket ${err.code ?? 'error'}`);
      // Our own terminate() of a handshake at shutdown ("closed before the connection was established") is no failure.
      if (this.state === 'stopped') return;
      const http = /Unexpected server response: (\d+)/.exec(err.message);
      this.#failure = http ? { kind: 'refused', status: Number(http[1]) } : { kind: 'unreachable' };
      // By reason: "http 503", an errno code (ECONNREFUSED, ECONNRESET, EMFILE), or the start of ws's message (handshake timeout).
      this.host.stats.connectFailure(http ? `http ${http[1]}` : (err.code ?? err.message.slice(0, 40)));
    });
    ws.on('close', (code) => this.#onClose(code));
  }

  /** HttpChannel has the members of WebSocket this class uses (on, send, close, terminate, readyState). */
  #httpChannel(): WebSocket {
    const options = this.host.connectOptions(this);
    return new HttpChannel({
      url: httpEndpoint(this.host.url),
      headers: options.headers as Record<string, string>,
      ca: options.ca,
      localAddress: options.localAddress,
      pollWaitS: this.host.pollWaitS,
    }) as unknown as WebSocket;
  }

  /** Ends the connection for good (fleet shutdown). */
  close(): void {
    const ws = this.#socket;
    if (this.state === 'open' && ws) ws.close(CloseCode.NORMAL, 'simulation ended');
    else if (ws) ws.terminate();
    if (this.state !== 'open') this.state = 'stopped';
  }

  /** Drops TCP without a close frame: flapping, and tests that force a disconnect. */
  drop(): void {
    this.#socket?.terminate();
  }

  #onOpen(): void {
    const now = Date.now();
    this.state = 'open';
    this.#openedAt = now;
    this.host.stats.connects++;
    this.#send(encodeReported({ fw: FIRMWARE, profile: this.profile.name, ...reportedPatch(this.#settings) }));
    this.host.stats.reported++;
    if (this.#rebootId !== undefined) {
      this.#send(encodeResult(this.#rebootId, ResultStatus.SUCCEEDED, { rebooted: true }));
      this.host.stats.command('reboot', 'succeeded');
      this.#rebootId = undefined;
    }
    // Everything still in the window goes again, byte for byte, before anything new.
    for (const p of this.window) this.#transmit(p, now, true);
    const intervalMs = this.#settings.intervalS * 1000;
    // Spread the first message over one interval, so a ramp does not synchronise the fleet.
    if (this.#nextSendAt < now) this.#nextSendAt = now + this.host.random() * intervalMs;
    const { flap, malformed } = this.host.chaosMeanMs;
    if (this.roles & ChaosRole.FLAP) this.#chaosAt = now + exponentialDelay(flap, this.host.random);
    else if (this.roles & ChaosRole.MALFORMED) this.#chaosAt = now + exponentialDelay(malformed, this.host.random);
  }

  #onClose(code: number): void {
    const now = Date.now();
    const wasOpen = this.state === 'open';
    this.#socket = undefined;
    this.#chaosAt = 0;
    if (wasOpen) this.host.stats.disconnect(code);
    const ending: Ending = wasOpen ? { kind: 'closed', code, ownReboot: this.#rebootId !== undefined } : (this.#failure ?? { kind: 'unreachable' });
    const stable = wasOpen && now - this.#openedAt >= this.host.timing.stableMs;
    const decision = afterEnding(ending, this.#attempt, stable, this.host.timing, this.host.random);
    if (decision.firmwareError) this.host.stats.firmwareErrors++;
    this.#attempt = decision.nextAttempt;
    if (this.host.closing || (wasOpen && this.host.stayDownAfterDrop)) {
      this.state = 'stopped';
      return;
    }
    this.state = 'idle';
    this.wakeAt = now + decision.delayMs;
  }

  #onMessage(data: Buffer, isBinary: boolean): void {
    const msg = isBinary ? decodeHubFrame(data) : new PulsewireError('PW_ERR_TEXT_FRAME');
    if (msg instanceof PulsewireError) return this.host.stats.error('bad hub frame');
    this.#handle(msg);
  }

  #handle(msg: HubMessage): void {
    switch (msg.type) {
      case 2: return this.#onAck(msg);
      case 3: return this.#onCommand(msg);
      case 6: {
        const changed = applyDesired(msg.state);
        this.#settings = { ...this.#settings, ...changed };
        this.host.stats.desired++;
        this.#report(changed);
      }
    }
  }

  #onAck(ack: AckMessage): void {
    const i = this.window.findIndex((p) => p.seq === ack.seq);
    if (i < 0) return this.host.stats.error('ack for unknown seq');
    const pending = this.window[i]!;
    const code = ack.code ?? AckCode.ACCEPTED;
    this.host.stats.ack(code);
    if (code === AckCode.RATE_LIMITED) {
      pending.retryAt = Date.now() + (1 + this.host.random()) * this.host.timing.retryMs;
      return;
    }
    this.window.splice(i, 1);
    if (code === AckCode.ACCEPTED || code === AckCode.DUPLICATE) this.host.stats.latency.record(Date.now() - pending.sentAt);
    else this.host.stats.dropped++; // 2, 3, 5 (or a code this firmware does not know): drop and move on
  }

  #onCommand(cmd: CommandMessage): void {
    const result = handleCommand(cmd.name, cmd.args);
    this.host.stats.command(cmd.name, result.outcome);
    const answer = encodeResult(cmd.commandId, result.status, result.payload);
    // A timer only for a delayed echo: commands are rare next to the fleet's 100 ms tick, and a tick would round the delay up.
    if (result.delayMs) setTimeout(() => this.#send(answer), result.delayMs);
    else this.#send(answer);
    if (result.changed) {
      this.#settings = { ...this.#settings, ...result.changed };
      if (result.changed.intervalS !== undefined) this.#nextSendAt = Math.min(this.#nextSendAt, Date.now() + result.changed.intervalS * 1000);
      this.#report(result.changed);
    }
    if (result.reboot) {
      this.#rebootId = cmd.commandId;
      this.#socket?.close(CloseCode.NORMAL, 'rebooting');
    }
  }

  #report(changed: Partial<Settings>): void {
    const patch = reportedPatch(changed);
    if (Object.keys(patch).length === 0) return;
    this.#send(encodeReported(patch));
    this.host.stats.reported++;
  }

  #sendTelemetry(now: number): void {
    const { batch, clockSkewS, random } = this.host;
    const nowS = now / 1000 + clockSkewS;
    // Strictly later than the previous pack, by at least 2 ms per record, so no (name, time) repeats.
    const toS = Math.max(nowS, this.#lastTimeS + batch * 0.002);
    const fromS = this.#lastTimeS === 0 ? toS - this.#settings.intervalS : this.#lastTimeS;
    this.#lastTimeS = toS;
    const records = buildPack(this.profile, this.#profileState, `${this.id}/`, fromS, toS, batch, random);
    const pending: Pending = { seq: this.#seq, bytes: encodeTelemetry(this.#seq, records), sentAt: 0, retryAt: 0 };
    this.#seq = (this.#seq + 1) % SEQ_MODULUS;
    this.window.push(pending);
    this.host.stats.sent++;
    this.host.stats.records += records.length;
    this.#transmit(pending, now, false);
  }

  #transmit(p: Pending, now: number, resend: boolean): void {
    p.sentAt = now;
    p.retryAt = 0;
    if (resend) this.host.stats.resent++;
    this.#send(p.bytes);
  }

  #send(bytes: Uint8Array): void {
    const ws = this.#socket;
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(bytes);
  }

  #chaos(now: number): void {
    if (this.roles & ChaosRole.FLAP) {
      this.host.stats.flaps++;
      this.#chaosAt = 0;
      this.drop();
      return;
    }
    this.host.stats.malformedSent++;
    this.#chaosAt = now + exponentialDelay(this.host.chaosMeanMs.malformed, this.host.random);
    this.#send(malformedFrame(this.host.random));
  }
}
