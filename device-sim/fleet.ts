/**
 * The fleet: creates the devices, runs the one shared scheduler tick, meters
 * new connections (--ramp), and shuts down in order: stop sending, wait a
 * bounded time for outstanding ACKs, close everything with 1000, summarise.
 */
import type { ClientOptions } from 'ws';
import { deriveEnrollmentSecret } from '../src/registry/secrets.js';
import { DEFAULT_TIMING, type BackoffTiming } from './backoff.js';
import { assignChaos, ChaosRole, FLAP_MEAN_MS, MALFORMED_MEAN_MS } from './chaos.js';
import { deviceId, idWidth, OptionError, type SimOptions } from './options.js';
import { profileFor } from './profiles/index.js';
import { checkFdLimit, descriptorsPerDevice, ephemeralPorts, isLoopbackHost, sourceAddressFor, type FdCheck } from './resources.js';
import { SimDevice, type DeviceHost } from './sim-device.js';
import { Stats } from './stats.js';
import { buildSummary, type ChaosCounts, type EndState, type Summary } from './summary.js';

/** Programmatic extras: tests shorten the waits and pin the randomness. */
export type FleetOptions = SimOptions & {
  timing?: Partial<BackoffTiming>;
  /** Scheduler period (default 100 ms). */
  tickMs?: number;
  random?: () => number;
  /** First seq of every device (tests check the wrap at 2^32). */
  startSeq?: number;
  /** Bound on waiting for outstanding ACKs at the end (default 10 s). */
  drainMs?: number;
  /** Mean ms between chaos events (defaults FLAP_MEAN_MS, MALFORMED_MEAN_MS); tests speed them up. */
  chaosMeanMs?: Partial<{ flap: number; malformed: number }>;
  /** Where warnings go (default stderr). */
  warn?: (line: string) => void;
  /** Once connected and dropped, a device stays down; a failed handshake is still retried with backoff. */
  stayDownAfterDrop?: boolean;
  /**
   * The whole fleet's last device number when this process simulates a part of it (--processes):
   * ids are padded to its width and source addresses chosen for its size, as one process would.
   */
  fleetLast?: number;
  /** Index of the first device in the whole fleet when it is split over processes (chaos counts add up across parts). */
  fleetOffset?: number;
};

/**
 * Where the devices are right now. `waiting`: tried before and now in backoff
 * (or queued for the ramp) to reconnect; `notStarted`: queued for their first
 * connection. Stopped devices are in none of them.
 */
export type Snapshot = { connected: number; connecting: number; waiting: number; notStarted: number; inFlight: number };

export class Fleet implements DeviceHost {
  readonly stats = new Stats();
  readonly devices: SimDevice[] = [];
  readonly url: string;
  readonly transport: 'ws' | 'http';
  readonly pollWaitS: number;
  readonly timing: BackoffTiming;
  readonly random: () => number;
  readonly batch: number;
  readonly clockSkewS: number;
  readonly chaosMeanMs: { flap: number; malformed: number };
  readonly fdCheck: FdCheck;
  sending = true;
  closing = false;
  readonly stayDownAfterDrop: boolean;
  readonly #options: FleetOptions;
  readonly #hostname: string;
  readonly #roles: Uint8Array;
  readonly #fleetLast: number;
  /** FIFO of devices waiting for a connection slot; #head avoids O(n) shift(). */
  #queue: SimDevice[] = [];
  #head = 0;
  #tokens = 1;
  #lastTick = Date.now();
  #timer: NodeJS.Timeout | undefined;
  #stopping: Promise<void> | undefined;
  #endedAt: number | undefined;
  #connectedAtEnd: number | undefined;

  constructor(options: FleetOptions) {
    this.#options = options;
    this.url = options.url;
    this.transport = options.transport;
    this.pollWaitS = options.pollWait;
    this.#hostname = new URL(options.url).hostname.replace(/^\[|\]$/g, '');
    this.timing = { ...DEFAULT_TIMING, ...options.timing };
    this.stayDownAfterDrop = options.stayDownAfterDrop ?? false;
    this.random = options.random ?? Math.random;
    this.batch = options.batch;
    this.clockSkewS = options.clockSkew;
    this.chaosMeanMs = { flap: FLAP_MEAN_MS, malformed: MALFORMED_MEAN_MS, ...options.chaosMeanMs };
    const warn = options.warn ?? ((line: string) => process.stderr.write(`device-sim: ${line}\n`));
    this.fdCheck = checkFdLimit(options.devices, undefined, descriptorsPerDevice(options.transport));
    if (this.fdCheck.advice) warn(this.fdCheck.advice);
    const ports = ephemeralPorts();
    if (!isLoopbackHost(this.#hostname) && ports !== undefined && options.devices > ports) {
      warn(`${options.devices} devices but only ${ports} local ports towards one hub address; run several processes on several machines.`);
    }
    this.#roles = assignChaos(options.devices, options, this.random, options.fleetOffset);
    this.#fleetLast = options.fleetLast ?? options.first + options.devices - 1;
    const width = idWidth(this.#fleetLast);
    for (let i = 0; i < options.devices; i++) {
      const id = deviceId(options.prefix, options.first + i, width);
      if (options.secrets && options.secrets[id] === undefined && !options.enrollmentKey) {
        throw new OptionError('secrets', `has no secret for ${id} (and there is no enrollment key to derive one)`);
      }
      this.devices.push(new SimDevice(id, i, profileFor(options.profile, i), this.#roles[i]!, this, options.rate, options.startSeq));
    }
  }

  start(): this {
    const tickMs = this.#options.tickMs ?? 100;
    this.#lastTick = Date.now();
    this.#timer = setInterval(() => this.tick(), tickMs);
    this.tick();
    return this;
  }

  /** One scheduler step: every device does what is due, then the ramp admits new connections. */
  tick(now = Date.now()): void {
    for (const device of this.devices) device.tick(now);
    const ramp = this.#options.ramp;
    // Allow a burst of at most 200 ms of ramp, so a pause in the loop does not become a storm.
    this.#tokens = Math.min(Math.max(1, ramp * 0.2), this.#tokens + (ramp * (now - this.#lastTick)) / 1000);
    this.#lastTick = now;
    while (this.#tokens >= 1 && this.#head < this.#queue.length) {
      const device = this.#queue[this.#head++]!;
      this.#tokens -= 1;
      if (device.state === 'queued' && !this.closing) device.connect();
    }
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
  }

  enqueue(device: SimDevice): void {
    this.#queue.push(device);
  }

  connectOptions(device: SimDevice): ClientOptions {
    const { secrets, enrollmentKey, ca } = this.#options;
    const secret = secrets?.[device.id] ?? deriveEnrollmentSecret(enrollmentKey!, device.id);
    const options: ClientOptions = { headers: { authorization: `Basic ${Buffer.from(`${device.id}:${secret}`).toString('base64')}` } };
    const source = sourceAddressFor(this.#options.first + device.index, this.#hostname, this.#fleetLast);
    if (source) options.localAddress = source;
    if (ca) options.ca = ca;
    return options;
  }

  get size(): number {
    return this.devices.length;
  }

  snapshot(): Snapshot {
    const s: Snapshot = { connected: 0, connecting: 0, waiting: 0, notStarted: 0, inFlight: 0 };
    for (const d of this.devices) {
      if (d.state === 'open') s.connected++;
      else if (d.state === 'connecting') s.connecting++;
      else if (d.state !== 'stopped') {
        if (d.tried) s.waiting++;
        else s.notStarted++;
      }
      s.inFlight += d.window.length;
    }
    return s;
  }

  /**
   * Stops sending, waits up to `drainMs` (default the option's, 10 s) for ACKs,
   * closes every connection with 1000. Idempotent: a second call joins the first.
   */
  stop(drainMs = this.#options.drainMs ?? 10_000): Promise<void> {
    this.#stopping ??= this.#shutdown(drainMs);
    return this.#stopping;
  }

  chaosCounts(): ChaosCounts {
    const count = (role: number) => this.#roles.reduce((n, r) => n + (r & role ? 1 : 0), 0);
    return { zombies: count(ChaosRole.ZOMBIE), flapping: count(ChaosRole.FLAP), malformed: count(ChaosRole.MALFORMED) };
  }

  /** What the summary needs besides the stats, as of the end of the run (or now, before it). */
  endState(): EndState {
    return {
      endedAt: this.#endedAt ?? Date.now(),
      connectedAtEnd: this.#connectedAtEnd ?? this.snapshot().connected,
      unacknowledged: this.devices.reduce((n, d) => n + d.window.length, 0),
      ...this.chaosCounts(),
    };
  }

  summary(): Summary {
    return buildSummary(this.stats, this.#options, this.endState());
  }

  async #shutdown(drainMs: number): Promise<void> {
    this.sending = false;
    const drainUntil = Date.now() + drainMs;
    while (Date.now() < drainUntil && this.devices.some((d) => d.window.length > 0)) await sleep(50);
    this.#endedAt = Date.now();
    this.#connectedAtEnd = this.snapshot().connected;
    this.closing = true;
    for (const d of this.devices) d.close();
    // Give the close handshakes a moment, then cut whatever is left.
    const closeUntil = Date.now() + 3_000;
    const busy = () => this.devices.some((d) => d.state === 'open' || d.state === 'connecting');
    while (Date.now() < closeUntil && busy()) await sleep(50);
    for (const d of this.devices) if (d.state === 'open' || d.state === 'connecting') d.drop();
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
