import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LivenessSweep, TARGET_SWEEP_MS, type Pingable } from '../../src/gateway/liveness.js';

const INTERVAL = 1000;

class FakeSocket implements Pingable {
  heldByHub = false;
  pings: number[] = [];
  timedOutAt: number | undefined;
  /** Answers each ping at once (a healthy device) unless dead. */
  constructor(private readonly sweep: LivenessSweep<FakeSocket>, public dead = false) {}
  ping(): void {
    this.pings.push(Date.now());
    if (!this.dead) this.sweep.markAlive(this);
  }
  onPingTimeout(): void { this.timedOutAt = Date.now(); }
}

/** Advances the fake clock 1 ms at a time until the socket is timed out (or `limit` ms passed). */
function runUntilTimedOut(socket: FakeSocket, limit: number): number | undefined {
  const start = Date.now();
  while (socket.timedOutAt === undefined && Date.now() - start < limit) vi.advanceTimersByTime(1);
  return socket.timedOutAt;
}

describe('LivenessSweep (fake clock, the real timer)', () => {
  let sweep: LivenessSweep<FakeSocket>;
  beforeEach(() => {
    vi.useFakeTimers({ now: 0 });
    sweep = new LivenessSweep<FakeSocket>(INTERVAL, { now: () => Date.now() });
    sweep.start();
  });
  afterEach(() => {
    sweep.stop();
    vi.useRealTimers();
  });

  it('sweeps every half interval', () => {
    expect(sweep.sweepIntervalMs).toBe(INTERVAL / 2);
  });

  it('a zombie is terminated within two intervals of connecting, wherever the connection falls between sweeps', () => {
    const worst: number[] = [];
    // Connections at every 10 ms offset across three sweep periods.
    for (let offset = 0; offset < 1500; offset += 10) {
      vi.advanceTimersByTime(10);
      const zombie = new FakeSocket(sweep, true);
      const connectedAt = Date.now();
      sweep.add(zombie);
      const at = runUntilTimedOut(zombie, 3 * INTERVAL);
      expect(at, `connected at ${connectedAt}`).toBeTypeOf('number');
      const took = at! - connectedAt;
      expect(took).toBeLessThanOrEqual(2 * INTERVAL);
      // Never before its ping had a full interval to be answered.
      expect(at! - zombie.pings[0]!).toBeGreaterThanOrEqual(INTERVAL);
      worst.push(took);
    }
    // The bound actually reached: up to 1.5 intervals (half an interval until the first ping, one for the pong).
    expect(Math.max(...worst)).toBeLessThanOrEqual(1.5 * INTERVAL);
    expect(Math.max(...worst)).toBeGreaterThan(1.4 * INTERVAL);
  });

  it('a device that dies right after a pong is terminated within two intervals of that pong', () => {
    for (let offset = 0; offset < 1000; offset += 50) {
      vi.advanceTimersByTime(50);
      const device = new FakeSocket(sweep);
      sweep.add(device);
      vi.advanceTimersByTime(3 * INTERVAL + offset);
      const lastPong = device.pings.at(-1)!; // answered at once
      device.dead = true;
      const at = runUntilTimedOut(device, 3 * INTERVAL);
      expect(at).toBeTypeOf('number');
      expect(at! - lastPong).toBeLessThanOrEqual(2 * INTERVAL);
      expect(at! - lastPong).toBeGreaterThanOrEqual(INTERVAL);
    }
  });

  it('pings a healthy device once per interval and never times it out', () => {
    const device = new FakeSocket(sweep);
    sweep.add(device);
    vi.advanceTimersByTime(20 * INTERVAL);
    expect(device.timedOutAt).toBeUndefined();
    // Added at 0: pinged by the first sweep (500 ms), then every interval: 500, 1500, ..., 19500.
    expect(device.pings).toHaveLength(20);
    expect(device.pings[0]).toBe(INTERVAL / 2);
    const gaps = device.pings.slice(1).map((t, i) => t - device.pings[i]!);
    expect(Math.min(...gaps)).toBe(INTERVAL);
  });

  it('does not time out a socket the hub itself stopped reading (backpressure), and judges it again after', () => {
    const socket = new FakeSocket(sweep, true);
    sweep.add(socket);
    vi.advanceTimersByTime(INTERVAL / 2); // pinged, no pong
    expect(socket.pings).toHaveLength(1);
    socket.heldByHub = true; // its pong cannot be read now
    vi.advanceTimersByTime(5 * INTERVAL);
    expect(socket.timedOutAt).toBeUndefined();
    socket.heldByHub = false;
    const releasedAt = Date.now();
    const at = runUntilTimedOut(socket, 3 * INTERVAL);
    expect(socket.pings).toHaveLength(2); // pinged afresh once released
    expect(at! - releasedAt).toBeLessThanOrEqual(2 * INTERVAL);
  });

  it('forgets removed sockets', () => {
    const socket = new FakeSocket(sweep, true);
    sweep.add(socket);
    sweep.delete(socket);
    vi.advanceTimersByTime(5 * INTERVAL);
    expect(socket.pings).toHaveLength(0);
    expect(socket.timedOutAt).toBeUndefined();
    expect(sweep.size).toBe(0);
  });
});

describe('LivenessSweep with late sweeps (a busy core)', () => {
  it('keeps the two-interval bound while each sweep starts up to 0.15 of an interval after it was due', () => {
    // Node's setInterval schedules each run one period after the previous run started, so a busy
    // event loop stretches the gaps between sweeps: here each gap is half an interval plus 0 to 0.15 interval.
    let clock = 0;
    const sweep = new LivenessSweep<FakeSocket>(INTERVAL, { now: () => clock });
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const connected = new Map<FakeSocket, number>();
    const timedOut = new Map<FakeSocket, number>();
    class ClockSocket extends FakeSocket {
      override ping(): void { this.pings.push(clock); }
      override onPingTimeout(): void { timedOut.set(this, clock); }
    }
    for (let k = 0; k < 400; k++) {
      const next = clock + sweep.sweepIntervalMs + random() * 0.15 * INTERVAL;
      clock += random() * (next - clock); // a zombie connects somewhere before the next sweep
      const z = new ClockSocket(sweep, true);
      connected.set(z, clock);
      sweep.add(z);
      clock = next;
      sweep.sweep();
    }
    for (let k = 0; k < 6; k++) { clock += sweep.sweepIntervalMs + 0.15 * INTERVAL; sweep.sweep(); }
    expect(timedOut.size).toBe(connected.size);
    const took = [...timedOut].map(([z, at]) => at - connected.get(z)!);
    expect(Math.max(...took)).toBeLessThanOrEqual(2 * INTERVAL);
    // And never before its ping was a full interval old (as measured on the clock).
    for (const [z, at] of timedOut) expect(at - z.pings[0]!).toBeGreaterThanOrEqual(INTERVAL);
  });
});

describe('LivenessSweep with the default 25 s interval (sweeps every 500 ms)', () => {
  const LONG = 25_000;

  it('cuts the interval into whole sweeps of about TARGET_SWEEP_MS, never fewer than two', () => {
    expect(new LivenessSweep(LONG).sweepIntervalMs).toBe(TARGET_SWEEP_MS);
    expect(new LivenessSweep(5_000).sweepIntervalMs).toBe(TARGET_SWEEP_MS);
    expect(new LivenessSweep(1_200).sweepIntervalMs).toBe(600);
    expect(new LivenessSweep(100).sweepIntervalMs).toBe(50);
  });

  it('pings a reconnect storm as it arrived, not in bursts of half the fleet (and times out none of it)', () => {
    // 19,000 healthy devices connecting evenly over 15 s, as in the storm bench.
    let clock = 0;
    const sweep = new LivenessSweep<FakeSocket>(LONG, { now: () => clock });
    const pingsAt = new Map<number, number>();
    class CountingSocket extends FakeSocket {
      override ping(): void {
        pingsAt.set(clock, (pingsAt.get(clock) ?? 0) + 1);
        sweep.markAlive(this);
      }
      override onPingTimeout(): void { this.timedOutAt = clock; }
    }
    const devices: CountingSocket[] = [];
    const fleet = 19_000, spreadMs = 15_000, step = spreadMs / fleet;
    let nextSweep = sweep.sweepIntervalMs;
    for (let i = 0; i < fleet; i++) {
      clock = i * step;
      while (nextSweep <= clock) { const c = clock; clock = nextSweep; sweep.sweep(); clock = c; nextSweep += sweep.sweepIntervalMs; }
      const d = new CountingSocket(sweep);
      devices.push(d);
      sweep.add(d);
    }
    // Two more intervals: every device's first and second pings.
    for (; nextSweep <= spreadMs + 2 * LONG; nextSweep += sweep.sweepIntervalMs) { clock = nextSweep; sweep.sweep(); }
    const perSweep = [...pingsAt.values()];
    const arrivalsPerSweep = Math.ceil(fleet / (spreadMs / sweep.sweepIntervalMs));
    // Each sweep pings at most what arrived since the previous one (plus rounding): ~634, where one sweep
    // every half interval pinged ~9,500 at once.
    expect(Math.max(...perSweep)).toBeLessThanOrEqual(arrivalsPerSweep + 1);
    expect(perSweep.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(2 * fleet);
    expect(devices.filter((d) => d.timedOutAt !== undefined)).toHaveLength(0);
  });

  it('a zombie goes within interval + 1.5 sweeps of connecting, and never before its ping is an interval old', () => {
    vi.useFakeTimers({ now: 0 });
    const sweep = new LivenessSweep<FakeSocket>(LONG, { now: () => Date.now() });
    sweep.start();
    try {
      for (let offset = 0; offset < 1_000; offset += 37) {
        vi.advanceTimersByTime(37);
        const zombie = new FakeSocket(sweep, true);
        const connectedAt = Date.now();
        sweep.add(zombie);
        const at = runUntilTimedOut(zombie, 2 * LONG);
        expect(at, `connected at ${connectedAt}`).toBeTypeOf('number');
        expect(at! - connectedAt).toBeLessThanOrEqual(LONG + 1.5 * sweep.sweepIntervalMs);
        expect(at! - zombie.pings[0]!).toBeGreaterThanOrEqual(LONG);
      }
    } finally {
      sweep.stop();
      vi.useRealTimers();
    }
  });
});
