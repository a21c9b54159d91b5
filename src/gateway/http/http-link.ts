/**
 * What carries hub -> device messages for an HTTP fallback device (protocol
 * section 8): one HttpLink per presence period, from the device's first
 * request until it goes offline. It is the device's session in
 * DeviceRuntimes, so the outbox, the online count, kicks and the shutdown
 * treat it like a WebSocket session.
 *
 * Messages only go out inside a response, so `deliver` hands them to the
 * request currently waiting for them (a long poll, or a POST collecting what
 * waits) and resolves once that response was written: true (for every
 * message) when Node wrote the whole response to the socket ('finish'),
 * false when the client went away first. With no request waiting, `deliver`
 * answers false and the outbox keeps the commands queued for the next
 * request.
 */
import type { Claim } from '../../presence/device-presence.js';
import type { OfflineReason } from '../../events/bus.js';
import type { HubMessage } from '../../protocol/messages.js';
import type { DeviceSessionHandle } from '../device-runtime.js';
import type { Presence } from './presence.js';

/** One response's share of hub -> device messages: the outbox fills it, the route writes it. */
export class Pickup {
  messages: HubMessage[] | undefined;
  readonly filled: Promise<void>;
  #fill!: () => void;
  #settle: ((written: boolean) => void) | undefined;

  constructor() {
    this.filled = new Promise((resolve) => { this.#fill = resolve; });
  }

  take(messages: HubMessage[]): Promise<boolean> {
    this.messages = messages;
    this.#fill();
    return new Promise((resolve) => { this.#settle = resolve; });
  }

  /** The response carrying the messages was written (or not): the outbox marks the commands sent (or requeues them). */
  settle(written: boolean): void {
    this.#settle?.(written);
    this.#settle = undefined;
  }
}

type Receiver = { pickup: Pickup; isPoll: boolean; release: () => void };

export type LinkEnded = (link: HttpLink, reason: OfflineReason, detail: string | undefined) => void;

export class HttpLink implements DeviceSessionHandle, Presence {
  readonly deviceId: string;
  readonly connectedAt = Date.now();
  remoteAddress: string;
  openRequests = 0;
  claim: Promise<Claim | undefined> | undefined = undefined;
  #receiver: Receiver | undefined;
  #ended = false;
  readonly #onEnded: LinkEnded;
  readonly #endListeners: (() => void)[] = [];

  constructor(deviceId: string, remoteAddress: string, onEnded: LinkEnded) {
    this.deviceId = deviceId;
    this.remoteAddress = remoteAddress;
    this.#onEnded = onEnded;
  }

  get ended(): boolean {
    return this.#ended;
  }

  /**
   * A long poll waits here. Only one per device: an older poll is released
   * (answered with what it has, normally an empty array), since the device
   * evidently gave up on it.
   */
  openPoll(pickup: Pickup, release: () => void): void {
    this.#receiver?.release();
    this.#receiver = { pickup, isPoll: true, release };
  }

  /** A POST collects what waits, unless a long poll is open: that poll is the device's way down. */
  offer(pickup: Pickup): boolean {
    if (this.#receiver || this.#ended) return false;
    this.#receiver = { pickup, isPoll: false, release: () => undefined };
    return true;
  }

  withdraw(pickup: Pickup): void {
    if (this.#receiver?.pickup === pickup) this.#receiver = undefined;
  }

  get hasPoll(): boolean {
    return this.#receiver?.isPoll === true;
  }

  /** One response carries them all, so one outcome for all: a cut-off CBOR body cannot be decoded by the device. */
  deliver(messages: HubMessage[]): Promise<boolean[]> {
    const receiver = this.#receiver;
    if (!receiver || this.#ended) return Promise.resolve(messages.map(() => false));
    this.#receiver = undefined;
    return receiver.pickup.take(messages).then((written) => messages.map(() => written));
  }

  /** Kick, takeover by a WebSocket, shutdown: an open poll is answered, the device goes offline with `offlineReason`. */
  end(_closeCode: number, reason: string, offlineReason: OfflineReason): void {
    this.#finish(offlineReason, reason);
  }

  onIdleTimeout(): void {
    this.#finish('poll-timeout', undefined);
  }

  // The shutdown treats every session alike (gateway/plugin.ts closeAllSessions).
  get isClosed(): boolean {
    return this.#ended;
  }

  onClosed(listener: () => void): void {
    if (this.#ended) listener();
    else this.#endListeners.push(listener);
  }

  terminate(): void {
    this.#finish('hub shutdown', undefined);
  }

  #finish(reason: OfflineReason, detail: string | undefined): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#receiver?.release();
    this.#receiver = undefined;
    this.#onEnded(this, reason, detail);
    for (const listener of this.#endListeners.splice(0)) listener();
  }
}
