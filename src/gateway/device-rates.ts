/**
 * Per-device rate limits on what a device sends, whatever the transport:
 * messages per second (PULSEWIRE_DEVICE_MESSAGE_RATE) and readings per
 * second (PULSEWIRE_DEVICE_READING_RATE), each a token bucket that lets a
 * burst of twice the rate through. The in-flight window of 32 bounds how
 * much a device has outstanding, not how fast it goes: on a fast link a
 * device whose ACKs come back in a millisecond could send 30,000 messages a
 * second and take the hub from the rest of the fleet.
 *
 * Over a limit a TELEMETRY message gets ACK 4 with a reason (resend later,
 * as the HTTP fallback's 429), a bare pack is dropped (it has no ACK), and a
 * REPORTED closes the connection with 1008 (it has no answer either, and a
 * device flooding state reports is a firmware loop to be told about).
 * RESULT is not counted: there are no more of them than the commands the
 * hub sent.
 */
import { PulsewireError } from '../errors/catalog.js';
import { CborPack } from '../protocol/senml-cbor.js';
import type { DeviceRuntime } from './device-runtime.js';
import { TokenBucket } from './token-bucket.js';

export type DeviceRateLimits = {
  readonly deviceMessageRate: number;
  readonly deviceReadingRate: number;
  /** The largest pack passes a full readings bucket even when the rate is set lower. */
  readonly maxRecordsPerPack: number;
};

/** Which limit a device hit (metric label of pulsewire_device_limits_hit_total). */
export type DeviceLimit = 'message-rate' | 'reading-rate' | 'names' | 'series';

export type DeviceBuckets = { readonly messages: TokenBucket; readonly readings: TokenBucket };

export class DeviceRateLimiter {
  readonly #limits: DeviceRateLimits;
  readonly #now: (() => number) | undefined;

  constructor(limits: DeviceRateLimits, now?: () => number) {
    this.#limits = limits;
    this.#now = now;
  }

  /** One message carrying `readings` records: undefined when it may go ahead, else why not (ACK 4). */
  takeTelemetry(runtime: DeviceRuntime, readings: number): { error: PulsewireError; limit: DeviceLimit } | undefined {
    const buckets = this.#buckets(runtime);
    if (buckets.messages.take() > 0) return this.#messageRate();
    if (readings > 0 && buckets.readings.take(readings) > 0) {
      return { error: new PulsewireError('PW_ERR_RATE_LIMITED', `more than ${this.#limits.deviceReadingRate} readings per second (PULSEWIRE_DEVICE_READING_RATE)`), limit: 'reading-rate' };
    }
    return undefined;
  }

  /** One message that carries no readings (REPORTED): undefined when it may go ahead. */
  takeMessage(runtime: DeviceRuntime): { error: PulsewireError; limit: DeviceLimit } | undefined {
    return this.#buckets(runtime).messages.take() > 0 ? this.#messageRate() : undefined;
  }

  #messageRate(): { error: PulsewireError; limit: DeviceLimit } {
    return { error: new PulsewireError('PW_ERR_RATE_LIMITED', `more than ${this.#limits.deviceMessageRate} messages per second (PULSEWIRE_DEVICE_MESSAGE_RATE)`), limit: 'message-rate' };
  }

  #buckets(runtime: DeviceRuntime): DeviceBuckets {
    if (runtime.rates) return runtime.rates;
    const { deviceMessageRate, deviceReadingRate, maxRecordsPerPack } = this.#limits;
    const now = this.#now ? { now: this.#now } : {};
    const buckets: DeviceBuckets = {
      messages: new TokenBucket({ ratePerS: deviceMessageRate, capacity: 2 * deviceMessageRate, ...now }),
      readings: new TokenBucket({ ratePerS: deviceReadingRate, capacity: Math.max(2 * deviceReadingRate, maxRecordsPerPack), ...now }),
    };
    runtime.rates = buckets;
    return buckets;
  }
}

/** Records a TELEMETRY pack claims to carry, counted before it is resolved (a pack that is not an array has none). */
export function packLength(pack: unknown): number {
  if (pack instanceof CborPack) return pack.length;
  return Array.isArray(pack) ? pack.length : 0;
}
