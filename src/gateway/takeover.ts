/**
 * Protocol 2: "a second connection of a device that is already connected
 * wins: the older one is closed with 4000". Which one is newer cannot be read
 * off arrival order. In a reconnect storm the listen backlog overflows, and a
 * connection attempt the device already gave up on (its client timed out and
 * closed the socket) can complete its TCP handshake in the kernel later, on a
 * retransmission, after the device's live connection. The hub then reads its
 * upgrade request (the FIN behind it is not read yet), upgrades it, and would
 * throw the live connection out for a socket nobody answers on; the device,
 * told 4000, waits long before it reconnects (bench/scenarios/storm.ts: 743
 * live connections closed so).
 *
 * So a connection that arrives while its device has a live session waits
 * here: pinged at once, not attached (no DESIRED, no commands; the live
 * session keeps working), and it takes over at its first sign of life, a pong
 * or any frame. One that closes first, or shows no life within
 * `confirmBoundMs`, is dropped and the live session never noticed.
 *
 * Several waiting connections of one device (rare: two abandoned attempts,
 * or one abandoned and one real) all wait; the first to show life takes over
 * and the others are dropped, as are all of them when a connection of the
 * device is attached at once (it had no live session any more). At most
 * MAX_WAITING_PER_DEVICE wait; beyond that the oldest gives way.
 */
import type { OfflineReason } from '../events/bus.js';

/** Longest a newer connection may take to show life before it is dropped; a pong needs one round trip. */
export const TAKEOVER_CONFIRM_MAX_MS = 5000;

/** Bounds the sockets a device in a reconnect loop can hold open while none of them answers. */
export const MAX_WAITING_PER_DEVICE = 4;

/** min(ping interval, 5 s): a connection never waits longer than the liveness sweep would give it. */
export function confirmBoundMs(pingIntervalMs: number): number {
  return Math.min(pingIntervalMs, TAKEOVER_CONFIRM_MAX_MS);
}

export interface TakeoverCandidate {
  readonly deviceId: string;
  /** Pings now; `onAlive` runs at the first pong or frame, before that frame is processed. */
  awaitSignOfLife(onAlive: () => void): void;
  end(closeCode: number, reason: string, offlineReason: OfflineReason): void;
  terminate(): void;
}

/** How a waiting connection's takeover ended; the label of pulsewire_takeovers_total. */
export type TakeoverOutcome = 'confirmed' | 'closed' | 'no-sign-of-life' | 'superseded' | 'kicked' | 'hub shutdown';

export type TakeoverOptions<T> = {
  boundMs: number;
  /** Every outcome, once per candidate (metrics, log); `detail` says why. */
  settled(candidate: T, outcome: TakeoverOutcome, detail?: string): void;
};

type Entry = { timer: NodeJS.Timeout; promote: () => void; dropped: boolean };

export class Takeovers<T extends TakeoverCandidate> {
  readonly #options: TakeoverOptions<T>;
  /** Every candidate that never took over, until its connection has closed. */
  readonly #entries = new Map<T, Entry>();
  /** The candidates that may still take over, per device, oldest first. */
  readonly #byDevice = new Map<string, Set<T>>();

  constructor(options: TakeoverOptions<T>) {
    this.#options = options;
  }

  /** Holds `candidate` until its first sign of life, then calls `promote` (in the same turn). */
  hold(candidate: T, promote: () => void): void {
    let waiting = this.#byDevice.get(candidate.deviceId);
    if (!waiting) this.#byDevice.set(candidate.deviceId, (waiting = new Set()));
    if (waiting.size >= MAX_WAITING_PER_DEVICE) {
      this.#drop(waiting.values().next().value!, 'superseded', `more than ${MAX_WAITING_PER_DEVICE} newer connections waiting`);
    }
    const timer = setTimeout(() => this.#drop(candidate, 'no-sign-of-life', `no pong or frame within ${this.#options.boundMs} ms`), this.#options.boundMs);
    timer.unref();
    this.#entries.set(candidate, { timer, promote, dropped: false });
    waiting.add(candidate);
    candidate.awaitSignOfLife(() => this.#confirm(candidate));
  }

  /** A connection of the device was attached: the ones still waiting lost. */
  supersede(deviceId: string): void {
    for (const candidate of this.#byDevice.get(deviceId) ?? []) this.#drop(candidate, 'superseded', 'another connection of the device took over');
  }

  /** Closes the device's waiting connections with the code its live one gets (kick); how many there were. */
  end(deviceId: string, closeCode: number, reason: string, outcome: 'kicked' | 'hub shutdown'): number {
    const waiting = [...(this.#byDevice.get(deviceId) ?? [])];
    for (const candidate of waiting) {
      this.#release(candidate, outcome, reason);
      candidate.end(closeCode, reason, outcome);
    }
    return waiting.length;
  }

  /** Shutdown: closes every waiting connection and returns them, to wait for their close. */
  endAll(closeCode: number, reason: string): T[] {
    const all = [...this.#byDevice.values()].flatMap((set) => [...set]);
    for (const candidate of all) {
      this.#release(candidate, 'hub shutdown', reason);
      candidate.end(closeCode, reason, 'hub shutdown');
    }
    return all;
  }

  /**
   * The candidate's connection closed. True if it never took over: its close
   * changes nothing about the device (reported here when it closed by itself).
   */
  closed(candidate: T, detail: string | undefined): boolean {
    if (!this.#entries.has(candidate)) return false;
    this.#release(candidate, 'closed', detail); // nothing to report if the hub dropped it
    this.#entries.delete(candidate);
    return true;
  }

  /** Connections waiting for their first sign of life. */
  get size(): number {
    let n = 0;
    for (const set of this.#byDevice.values()) n += set.size;
    return n;
  }

  #confirm(candidate: T): void {
    const entry = this.#entries.get(candidate);
    if (!entry || entry.dropped) return;
    this.#entries.delete(candidate);
    this.#forget(candidate, entry);
    this.#options.settled(candidate, 'confirmed');
    this.supersede(candidate.deviceId);
    entry.promote();
  }

  /** Drops a candidate from the hub's side: terminated, no close handshake (it has shown no life). */
  #drop(candidate: T, outcome: TakeoverOutcome, detail: string): void {
    if (!this.#release(candidate, outcome, detail)) return;
    candidate.terminate();
  }

  /** Stops a candidate from taking over and reports why; false if it already could not. */
  #release(candidate: T, outcome: TakeoverOutcome, detail?: string): boolean {
    const entry = this.#entries.get(candidate);
    if (!entry || entry.dropped) return false;
    entry.dropped = true;
    this.#forget(candidate, entry);
    this.#options.settled(candidate, outcome, detail);
    return true;
  }

  #forget(candidate: T, entry: Entry): void {
    clearTimeout(entry.timer);
    const waiting = this.#byDevice.get(candidate.deviceId);
    waiting?.delete(candidate);
    if (waiting?.size === 0) this.#byDevice.delete(candidate.deviceId);
  }
}
