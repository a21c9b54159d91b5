/**
 * Turns one TELEMETRY message into an ACK outcome: duplicate check, SenML
 * resolution and validation, the per-device name limit, then the append to
 * the on-disk spool (with the message's seq and fingerprint for the durable
 * duplicate window). The ACK is only decided after that append committed, so
 * an ACK code 0 always means "durably accepted"; the spool drainer gets it
 * into InfluxDB. Transport-free, so the WebSocket session and the HTTP
 * fallback share it.
 */
import { isPulsewireError, PulsewireError, truncateUtf8 } from '../errors/catalog.js';
import type { EventBus } from '../events/bus.js';
import type { Reading } from '../protocol/messages.js';
import { resolvePack } from '../protocol/senml.js';
import { readingLines } from '../storage/reading-lines.js';
import type { AckOutcome, DeviceRuntime } from './device-runtime.js';
import { packLength, type DeviceLimit, type DeviceRateLimiter } from './device-rates.js';

export type IntakeLimits = {
  readonly maxRecordsPerPack: number;
  readonly maxFutureSeconds: number;
  readonly maxPastSeconds: number;
  readonly maxNamesPerDevice: number;
  readonly maxSeries: number;
};

/** The hub's count of series (storage/device-names-store.ts): reserved before the append, given back if it fails. */
export interface SeriesBudget {
  reserve(max: number): boolean;
  release(count: number): void;
}

/**
 * The spool: resolves once the points (`count` lines of line protocol, and
 * the seq mark, and the names new to the device) are committed to disk.
 */
export interface PointSink {
  appendLines(deviceId: string, lines: string, count: number, mark?: { seq: number; fingerprint: number }, names?: readonly string[]): Promise<void>;
}

export interface IntakeObserver {
  ack(code: number): void;
  readings(count: number): void;
  /** A message refused for a per-device or fleet limit (besides its ACK). */
  limited?(limit: DeviceLimit): void;
}

export type IntakeDeps = {
  readonly limits: IntakeLimits;
  readonly sink: PointSink;
  readonly bus: EventBus;
  readonly observer: IntakeObserver;
  /** Microseconds since the epoch; injectable so tests can pin the hub's clock. */
  readonly nowUs: () => number;
  /** Delays an ACK while InfluxDB delivery lags behind (storage/backlog-pacer.ts). */
  readonly pace?: () => Promise<void> | undefined;
  /** Per-device message and reading rates (device-rates.ts); none: unlimited. */
  readonly rates?: DeviceRateLimiter;
  /** The hub's series count; none: PULSEWIRE_MAX_SERIES is not enforced. */
  readonly series?: SeriesBudget;
};

/** What nearly every message reserves: no name new to its device. */
const NOTHING_NEW: { readonly names: readonly string[] } = Object.freeze({ names: Object.freeze([]) });

/** The two outcomes of nearly every message, shared: an outcome is only read, never changed. */
const STORED: AckOutcome = Object.freeze({ code: 0 });
const DUPLICATE: AckOutcome = Object.freeze({ code: 1 });

export class TelemetryIntake {
  readonly #deps: IntakeDeps;

  constructor(deps: IntakeDeps) {
    this.#deps = deps;
  }

  /**
   * An acknowledged TELEMETRY message `[1, seq, pack]`. `fingerprint` identifies the
   * frame's bytes, so only a true resend of an accepted message counts as a duplicate.
   */
  async accept(runtime: DeviceRuntime, seq: number, pack: unknown, fingerprint: number): Promise<AckOutcome> {
    if (runtime.windowReady !== undefined) await runtime.windowReady;
    if (runtime.accepted.has(seq, fingerprint)) return this.#observed(DUPLICATE);
    const inProgress = runtime.pending.get(seq);
    if (inProgress?.fingerprint === fingerprint) {
      const first = await inProgress.outcome;
      return this.#observed(first.code === 0 ? DUPLICATE : first);
    }
    // A resend is answered above without counting: after a reconnect a device resends its whole window at once.
    const limited = this.#deps.rates?.takeTelemetry(runtime, packLength(pack));
    if (limited) return this.#observed(this.#limited(limited));
    const outcome = this.#store(runtime, pack, { seq, fingerprint });
    const entry = { fingerprint, outcome };
    runtime.pending.set(seq, entry);
    try {
      const result = await outcome;
      if (result.code === 0) runtime.accepted.add(seq, fingerprint);
      return this.#observed(result);
    } finally {
      if (runtime.pending.get(seq) === entry) runtime.pending.delete(seq);
    }
  }

  /** A bare SenML pack: stored, never acknowledged; the caller decides what a failure means. */
  async acceptBare(runtime: DeviceRuntime, pack: unknown): Promise<AckOutcome> {
    // Cluster mode: the names (and window) another node handed over are loaded first.
    if (runtime.windowReady !== undefined) await runtime.windowReady;
    const limited = this.#deps.rates?.takeTelemetry(runtime, packLength(pack));
    if (limited) return this.#limited(limited);
    return this.#store(runtime, pack);
  }

  #limited(limited: { error: PulsewireError; limit: DeviceLimit }): AckOutcome {
    this.#deps.observer.limited?.(limited.limit);
    return outcomeOf(limited.error);
  }

  async #store(runtime: DeviceRuntime, pack: unknown, mark?: { seq: number; fingerprint: number }): Promise<AckOutcome> {
    const { limits, sink, bus, observer, nowUs } = this.#deps;
    const resolved = resolvePack(pack, {
      nowUs: nowUs(),
      maxRecords: limits.maxRecordsPerPack,
      maxFutureSeconds: limits.maxFutureSeconds,
      maxPastSeconds: limits.maxPastSeconds,
    });
    if (resolved instanceof PulsewireError) return outcomeOf(resolved);
    const { readings } = resolved;
    const reserved = this.#reserveNames(runtime, readings);
    if ('error' in reserved) return this.#limited(reserved);
    try {
      // The readings' stored form, made once here: the spool keeps it and the drainer writes it as is.
      await sink.appendLines(runtime.deviceId, readingLines(runtime.seriesKeys, readings), readings.length, mark, reserved.names);
    } catch (err) {
      this.#releaseNames(runtime, reserved.names);
      return outcomeOf(isPulsewireError(err) ? err : new PulsewireError('PW_ERR_STORAGE_UNAVAILABLE', undefined, { cause: err }));
    }
    runtime.readingsIn += readings.length;
    observer.readings(readings.length);
    if (bus.hasListeners('telemetry.accepted')) bus.emit('telemetry.accepted', { deviceId: runtime.deviceId, readings });
    // Stored already; only the ACK waits, and the device's window turns that into backpressure.
    const paced = this.#deps.pace?.();
    if (paced) await paced;
    return STORED;
  }

  /**
   * The names this pack brings that are new to the device, taken from its
   * budget and the hub's series count before the append (so two messages in
   * flight cannot both take the last place), or ACK 5 when one does not fit
   * (nothing taken then). If the append fails they are given back; a message
   * in flight at that moment that carried one of them too then stored it
   * without recording it, and it is recorded when it comes again.
   */
  #reserveNames(runtime: DeviceRuntime, readings: Reading[]): { readonly names: readonly string[] } | { error: PulsewireError; limit: DeviceLimit } {
    const { limits, series } = this.#deps;
    const names = runtime.names;
    let introduced: string[] | undefined;
    for (const { name } of readings) {
      if (names.has(name)) continue;
      let refusal: { error: PulsewireError; limit: DeviceLimit } | undefined;
      if (names.size >= limits.maxNamesPerDevice) {
        refusal = { error: new PulsewireError('PW_ERR_TOO_MANY_NAMES', `at most ${limits.maxNamesPerDevice} distinct names per device`), limit: 'names' };
      } else if (series && !series.reserve(limits.maxSeries)) {
        refusal = { error: new PulsewireError('PW_ERR_TOO_MANY_SERIES', `at most ${limits.maxSeries} (PULSEWIRE_MAX_SERIES)`), limit: 'series' };
      }
      if (refusal) {
        if (introduced) this.#releaseNames(runtime, introduced);
        return refusal;
      }
      names.add(name);
      (introduced ??= []).push(name);
    }
    return introduced ? { names: introduced } : NOTHING_NEW;
  }

  #releaseNames(runtime: DeviceRuntime, introduced: readonly string[]): void {
    if (introduced.length === 0) return;
    for (const name of introduced) runtime.names.delete(name);
    this.#deps.series?.release(introduced.length);
  }

  #observed(outcome: AckOutcome): AckOutcome {
    this.#deps.observer.ack(outcome.code);
    return outcome;
  }
}

/** Devices have little RAM: an ACK reason stays short, like a close reason. */
const MAX_ACK_REASON_BYTES = 100;

function outcomeOf(error: PulsewireError): AckOutcome {
  // Pack errors carry a precise detail ("record 3: ..."); others need the catalog's words for context.
  const reason = error.code === 'PW_ERR_PACK_MALFORMED' || error.code === 'PW_ERR_TIME_RANGE' ? error.detail ?? error.message : error.message;
  return { code: error.spec.ack ?? 4, reason: truncateUtf8(reason, MAX_ACK_REASON_BYTES) };
}
