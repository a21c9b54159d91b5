/**
 * Admission of device upgrades, decided before anything costly (the
 * credential check, the registry, the presence claim, the upgrade itself):
 * - device connections in total (PULSEWIRE_MAX_DEVICE_CONNECTIONS; by
 *   default what the open-files limit allows, less a reserve, so the hub
 *   answers 503 instead of failing accept() with EMFILE for everyone, its
 *   operators included) and per source address
 *   (PULSEWIRE_MAX_CONNECTIONS_PER_ADDRESS, IPv6 per /64 as the auth
 *   limiter counts);
 * - handshakes in progress at once (PULSEWIRE_MAX_HANDSHAKES) and
 *   handshakes begun per second (PULSEWIRE_ACCEPT_RATE), so a reconnect
 *   storm is let in at a pace that leaves the event loop free for the
 *   devices already connected, /readyz and the operators.
 *
 * Past the rate or the handshakes in progress, an upgrade waits in a queue
 * (PULSEWIRE_ADMISSION_QUEUE long, PULSEWIRE_ADMISSION_WAIT_MS at most)
 * rather than being refused at once. Why: the kernel's accept queue is one
 * FIFO for devices and health probes alike, so the hub must take
 * connections off it as fast as they come; accepting and parsing a request
 * is cheap, admitting a device (credentials, registry, presence, session)
 * is not, and a refusal only brings the device back a second later for
 * another accept and another refusal. The queue is released by a timer a
 * few at a time (10 ms worth of the rate per tick), so the costly part
 * comes in small slices with the event loop free in between; when the loop
 * is late, ticks are late and fewer devices are let in: the pace follows
 * what the hub can do.
 *
 * Beyond the queue, past the wait, or past a connection cap: HTTP 503 with
 * a Retry-After spread at random over a few seconds (busy) or up to a
 * minute (full), so a refused fleet does not come back in one second.
 * Counts are per process: with several workers or nodes each holds its own.
 *
 * Two steps: a turn (UpgradeTurn: the queue, the rate, the handshakes in
 * progress), taken as the upgrade request arrives, before Fastify routes it
 * (upgrade-gate.ts: a waiting request then costs the hub an accept and a
 * parse, half of what a routed one does); then a ticket (AdmissionTicket:
 * the connection caps, by address), taken when the turn came, held until
 * the TCP socket closes: refused, failed or, once upgraded, when the device
 * goes.
 */
import { PulsewireError } from '../errors/catalog.js';
import { addressKey } from './auth-limiter.js';
import { TokenBucket } from './token-bucket.js';

export type AdmissionLimits = {
  /** Undefined: no cap. */
  readonly maxDeviceConnections: number | undefined;
  readonly maxConnectionsPerAddress: number | undefined;
  readonly maxHandshakes: number;
  readonly acceptRate: number;
  /** Upgrades that may wait for their turn (0, the default: none wait, past the rate is refused at once). */
  readonly maxWaiting?: number;
  /** Longest an upgrade waits for its turn before it is refused, ms. */
  readonly maxWaitMs?: number;
};

export type AdmissionRefusal = { readonly error: PulsewireError; readonly retryAfterS: number };

/** Retry-After ranges, seconds: a busy hub frees up within seconds, a full one as devices leave. */
const BUSY_RETRY_S = [1, 5] as const;
const FULL_RETRY_S = [10, 60] as const;
/** The queue's release timer: small enough that a probe behind a tick waits little, large enough to batch. */
const RELEASE_TICK_MS = 10;

type TurnState = 'waiting' | 'handshake' | 'done';

/** An upgrade's place: waiting in the queue, then a handshake in progress until done(). */
export class UpgradeTurn {
  #state: TurnState;
  readonly #admission: DeviceAdmission;
  readonly #turn: Promise<AdmissionRefusal | undefined>;
  #settle: (refusal: AdmissionRefusal | undefined) => void = () => undefined;
  /** When it began to wait (the admission's clock), for the wait's bound. */
  readonly since: number;

  constructor(admission: DeviceAdmission, waiting: boolean, since: number) {
    this.#admission = admission;
    this.#state = waiting ? 'waiting' : 'handshake';
    this.since = since;
    this.#turn = waiting ? new Promise((resolve) => { this.#settle = resolve; }) : Promise.resolve(undefined);
  }

  get waiting(): boolean {
    return this.#state === 'waiting';
  }

  /**
   * Resolves when the upgrade may go on (undefined), or with the refusal it
   * met waiting (the wait's bound, the hub stopping, or done() before its
   * turn): the turn is then done already.
   */
  turn(): Promise<AdmissionRefusal | undefined> {
    return this.#turn;
  }

  /** The handshake finished, was answered, or its socket closed (a waiting turn leaves the queue). */
  done(): void {
    if (this.#state === 'done') return;
    const was = this.#state;
    this.#state = 'done';
    if (was === 'waiting') {
      this.#settle(this.#admission.gone());
      this.#admission.leftQueue();
    } else {
      this.#admission.leftHandshake();
    }
  }

  /** @internal DeviceAdmission's: its turn came. */
  go(): void {
    this.#state = 'handshake';
    this.#settle(undefined);
  }

  /** @internal DeviceAdmission's: it waited too long, or the hub stops. */
  refuse(refusal: AdmissionRefusal): void {
    this.#settle(refusal);
    this.done();
  }
}

export class AdmissionTicket {
  #released = false;
  readonly #admission: DeviceAdmission;
  readonly #key: string;
  readonly #turn: UpgradeTurn;

  constructor(admission: DeviceAdmission, key: string, turn: UpgradeTurn) {
    this.#admission = admission;
    this.#key = key;
    this.#turn = turn;
  }

  /** The upgrade completed, or was answered: no longer a handshake in progress. */
  handshakeDone(): void {
    this.#turn.done();
  }

  /** The socket closed. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#turn.done();
    this.#admission.left(this.#key);
  }
}

export class DeviceAdmission {
  readonly #limits: AdmissionLimits;
  readonly #random: () => number;
  readonly #rate: TokenBucket;
  readonly #now: () => number;
  readonly #byAddress = new Map<string, number>();
  /** FIFO; a turn done while waiting stays until it reaches the head (skipped there). */
  readonly #queue: UpgradeTurn[] = [];
  #queueHead = 0;
  #waiting = 0;
  #ticker: NodeJS.Timeout | undefined;
  #connections = 0;
  #handshakes = 0;

  constructor(limits: AdmissionLimits, options: { now?: () => number; random?: () => number } = {}) {
    this.#limits = limits;
    this.#random = options.random ?? Math.random;
    this.#now = options.now ?? Date.now;
    // Refusing at once: one second's worth may arrive at once (the burst of a restart is what the rate
    // paces). Queueing: one tick's worth, so what is let in comes in slices the event loop can interleave.
    const capacity = this.queueing ? Math.max(1, Math.ceil((limits.acceptRate * RELEASE_TICK_MS) / 1000)) : limits.acceptRate;
    this.#rate = new TokenBucket({ ratePerS: limits.acceptRate, capacity, now: this.#now });
  }

  /** Whether upgrades past the rate or the handshakes wait (else they are refused at once). */
  get queueing(): boolean {
    return (this.#limits.maxWaiting ?? 0) > 0 && (this.#limits.maxWaitMs ?? 0) > 0;
  }

  /** Device connections admitted and not yet closed (handshakes included). */
  get connections(): number {
    return this.#connections;
  }

  get handshakes(): number {
    return this.#handshakes;
  }

  /** Upgrades waiting for their turn. */
  get waiting(): number {
    return this.#waiting;
  }

  /**
   * A turn for an upgrade: now, or (queueing) a place in the queue whose
   * turn() resolves when it may go on; or why not.
   */
  queueTurn(): UpgradeTurn | AdmissionRefusal {
    if (!this.queueing) return this.#takeTurnNow();
    // Nobody waiting and room now: straight on. Otherwise behind those already waiting, if the queue has room.
    if (this.#waiting === 0) {
      const now = this.#turnNow();
      if (now) return now;
    }
    if (this.#waiting >= this.#limits.maxWaiting!) {
      return this.#refusal('PW_ERR_HANDSHAKES_BUSY', `${this.#waiting} waiting (PULSEWIRE_ADMISSION_QUEUE)`, BUSY_RETRY_S);
    }
    const turn = new UpgradeTurn(this, true, this.#now());
    this.#queue.push(turn);
    this.#waiting++;
    this.#ticker ??= setTimeout(() => this.#release(), RELEASE_TICK_MS).unref();
    return turn;
  }

  /**
   * A ticket for an upgrade from `address` whose turn came (without one: a
   * turn now or a refusal, no waiting), or why not.
   */
  admit(address: string, turn?: UpgradeTurn): AdmissionTicket | AdmissionRefusal {
    const { maxDeviceConnections, maxConnectionsPerAddress } = this.#limits;
    const key = addressKey(address);
    let refusal: AdmissionRefusal | undefined;
    const fromAddress = this.#byAddress.get(key) ?? 0;
    if (maxDeviceConnections !== undefined && this.#connections >= maxDeviceConnections) {
      refusal = this.#refusal('PW_ERR_CONNECTIONS_FULL', `${maxDeviceConnections} device connections (PULSEWIRE_MAX_DEVICE_CONNECTIONS)`, FULL_RETRY_S);
    } else if (maxConnectionsPerAddress !== undefined && fromAddress >= maxConnectionsPerAddress) {
      refusal = this.#refusal('PW_ERR_ADDRESS_CONNECTIONS_FULL', `${maxConnectionsPerAddress} from this address (PULSEWIRE_MAX_CONNECTIONS_PER_ADDRESS)`, FULL_RETRY_S);
    }
    if (refusal) {
      turn?.done();
      return refusal;
    }
    let granted = turn;
    if (!granted) {
      const now = this.#takeTurnNow();
      if (!(now instanceof UpgradeTurn)) return now;
      granted = now;
    }
    this.#connections++;
    this.#byAddress.set(key, fromAddress + 1);
    return new AdmissionTicket(this, key, granted);
  }

  /** Stops the release timer; turns still waiting are refused. */
  close(): void {
    clearTimeout(this.#ticker);
    this.#ticker = undefined;
    const queue = this.#queue.splice(0);
    this.#queueHead = 0;
    for (const turn of queue) if (turn.waiting) turn.refuse(this.#refusal('PW_ERR_HANDSHAKES_BUSY', 'the hub is stopping', BUSY_RETRY_S));
  }

  /** A turn if there is room now (no refusal built: a storm's queued arrivals come through here). */
  #turnNow(): UpgradeTurn | undefined {
    if (this.#handshakes >= this.#limits.maxHandshakes || this.#rate.take() > 0) return undefined;
    this.#handshakes++;
    return new UpgradeTurn(this, false, this.#now());
  }

  #takeTurnNow(): UpgradeTurn | AdmissionRefusal {
    const { maxHandshakes, acceptRate } = this.#limits;
    const handshakesFull = this.#handshakes >= maxHandshakes;
    const now = this.#turnNow();
    if (now) return now;
    return handshakesFull
      ? this.#refusal('PW_ERR_HANDSHAKES_BUSY', `${maxHandshakes} in progress (PULSEWIRE_MAX_HANDSHAKES)`, BUSY_RETRY_S)
      : this.#refusal('PW_ERR_ACCEPT_RATE', `${acceptRate} per second (PULSEWIRE_ACCEPT_RATE)`, BUSY_RETRY_S);
  }

  /** One tick: refuse who waited too long, then let in as many as the rate and the handshakes allow. */
  #release(): void {
    this.#ticker = undefined;
    const { maxHandshakes, acceptRate } = this.#limits;
    const oldest = this.#now() - this.#limits.maxWaitMs!;
    while (this.#queueHead < this.#queue.length) {
      const turn = this.#queue[this.#queueHead]!;
      if (!turn.waiting) { this.#queueHead++; continue; }
      if (turn.since <= oldest) {
        this.#queueHead++;
        turn.refuse(this.#refusal('PW_ERR_ACCEPT_RATE', `${acceptRate} per second (PULSEWIRE_ACCEPT_RATE); waited ${this.#limits.maxWaitMs} ms (PULSEWIRE_ADMISSION_WAIT_MS)`, BUSY_RETRY_S));
        continue;
      }
      if (this.#handshakes >= maxHandshakes || this.#rate.take() > 0) break;
      this.#queueHead++;
      this.#waiting--;
      this.#handshakes++;
      turn.go();
    }
    // Compact now and then, not per release: the array is the queue's only memory.
    if (this.#queueHead > 1024 && this.#queueHead * 2 > this.#queue.length) {
      this.#queue.splice(0, this.#queueHead);
      this.#queueHead = 0;
    }
    if (this.#queueHead === this.#queue.length) {
      this.#queue.length = 0;
      this.#queueHead = 0;
    } else {
      this.#ticker = setTimeout(() => this.#release(), RELEASE_TICK_MS).unref();
    }
  }

  /** @internal UpgradeTurn's: why a waiting turn done before its time got none. */
  gone(): AdmissionRefusal {
    return this.#refusal('PW_ERR_HANDSHAKES_BUSY', 'the connection closed while waiting', BUSY_RETRY_S);
  }

  /** @internal UpgradeTurn's. */
  leftQueue(): void {
    this.#waiting--;
  }

  /** @internal UpgradeTurn's. */
  leftHandshake(): void {
    this.#handshakes--;
  }

  /** @internal AdmissionTicket's. */
  left(key: string): void {
    this.#connections--;
    const count = (this.#byAddress.get(key) ?? 1) - 1;
    // Only addresses with open connections are kept: the map is bounded by them.
    if (count <= 0) this.#byAddress.delete(key);
    else this.#byAddress.set(key, count);
  }

  #refusal(code: 'PW_ERR_CONNECTIONS_FULL' | 'PW_ERR_ADDRESS_CONNECTIONS_FULL' | 'PW_ERR_HANDSHAKES_BUSY' | 'PW_ERR_ACCEPT_RATE', detail: string, [low, high]: readonly [number, number]): AdmissionRefusal {
    return { error: new PulsewireError(code, detail), retryAfterS: low + Math.floor(this.#random() * (high - low + 1)) };
  }
}
