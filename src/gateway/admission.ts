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
 * Beyond any of them: HTTP 503 with a Retry-After spread at random over a
 * few seconds (busy) or up to a minute (full), so a refused fleet does not
 * come back in one second. Counts are per process: with several workers or
 * nodes each holds its own.
 *
 * A ticket is taken at the start of an upgrade and held until its TCP
 * socket closes: refused, failed or, once upgraded, when the device goes.
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
};

export type AdmissionRefusal = { readonly error: PulsewireError; readonly retryAfterS: number };

/** Retry-After ranges, seconds: a busy hub frees up within seconds, a full one as devices leave. */
const BUSY_RETRY_S = [1, 5] as const;
const FULL_RETRY_S = [10, 60] as const;

export class AdmissionTicket {
  #inHandshake = true;
  #released = false;
  readonly #admission: DeviceAdmission;
  readonly #key: string;

  constructor(admission: DeviceAdmission, key: string) {
    this.#admission = admission;
    this.#key = key;
  }

  /** The upgrade completed, or was answered: no longer a handshake in progress. */
  handshakeDone(): void {
    if (!this.#inHandshake) return;
    this.#inHandshake = false;
    this.#admission.leftHandshake();
  }

  /** The socket closed. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.handshakeDone();
    this.#admission.left(this.#key);
  }
}

export class DeviceAdmission {
  readonly #limits: AdmissionLimits;
  readonly #random: () => number;
  readonly #rate: TokenBucket;
  readonly #byAddress = new Map<string, number>();
  #connections = 0;
  #handshakes = 0;

  constructor(limits: AdmissionLimits, options: { now?: () => number; random?: () => number } = {}) {
    this.#limits = limits;
    this.#random = options.random ?? Math.random;
    // One second's worth may arrive at once: the burst of a restart is what the rate paces.
    this.#rate = new TokenBucket({ ratePerS: limits.acceptRate, capacity: limits.acceptRate, ...(options.now ? { now: options.now } : {}) });
  }

  /** Device connections admitted and not yet closed (handshakes included). */
  get connections(): number {
    return this.#connections;
  }

  get handshakes(): number {
    return this.#handshakes;
  }

  /** A ticket for an upgrade from `address`, or why not. */
  admit(address: string): AdmissionTicket | AdmissionRefusal {
    const { maxDeviceConnections, maxConnectionsPerAddress, maxHandshakes, acceptRate } = this.#limits;
    const key = addressKey(address);
    if (maxDeviceConnections !== undefined && this.#connections >= maxDeviceConnections) {
      return this.#refusal('PW_ERR_CONNECTIONS_FULL', `${maxDeviceConnections} device connections (PULSEWIRE_MAX_DEVICE_CONNECTIONS)`, FULL_RETRY_S);
    }
    const fromAddress = this.#byAddress.get(key) ?? 0;
    if (maxConnectionsPerAddress !== undefined && fromAddress >= maxConnectionsPerAddress) {
      return this.#refusal('PW_ERR_ADDRESS_CONNECTIONS_FULL', `${maxConnectionsPerAddress} from this address (PULSEWIRE_MAX_CONNECTIONS_PER_ADDRESS)`, FULL_RETRY_S);
    }
    if (this.#handshakes >= maxHandshakes) {
      return this.#refusal('PW_ERR_HANDSHAKES_BUSY', `${maxHandshakes} in progress (PULSEWIRE_MAX_HANDSHAKES)`, BUSY_RETRY_S);
    }
    if (this.#rate.take() > 0) {
      return this.#refusal('PW_ERR_ACCEPT_RATE', `${acceptRate} per second (PULSEWIRE_ACCEPT_RATE)`, BUSY_RETRY_S);
    }
    this.#connections++;
    this.#handshakes++;
    this.#byAddress.set(key, fromAddress + 1);
    return new AdmissionTicket(this, key);
  }

  /** @internal AdmissionTicket's. */
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
