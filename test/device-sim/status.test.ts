/**
 * The status line says where the devices are while the hub is down: how many
 * wait to reconnect and why their connects failed, by reason, not a line of
 * zeros. And the stats of several processes merge into the fleet's (counts
 * add up, latency percentiles come from the merged histogram).
 */
import { describe, expect, it } from 'vitest';
import type { Snapshot } from '../../device-sim/fleet.js';
import { reasons, StatusLine } from '../../device-sim/status.js';
import { Stats } from '../../device-sim/stats.js';

describe('status line', () => {
  it('shows devices waiting to reconnect and failed connects by reason, most frequent first', () => {
    const stats = new Stats();
    for (let i = 0; i < 40; i++) stats.connectFailure('ECONNREFUSED');
    stats.connectFailure('http 503');
    stats.connectFailure('http 503');
    const snap: Snapshot = { connected: 1, connecting: 2, waiting: 7, notStarted: 0, inFlight: 0 };
    const line = new StatusLine({ stats, snapshot: () => snap, size: 10 }, 'off').line();
    expect(line).toContain('| devices 1/10 connected, 2 connecting | 7 waiting to reconnect | connect failures: ECONNREFUSED 40, http 503 2 |');
  });

  it('leaves out failures until there are some, and names devices still to start', () => {
    const snap: Snapshot = { connected: 0, connecting: 5, waiting: 0, notStarted: 95, inFlight: 0 };
    const line = new StatusLine({ stats: new Stats(), snapshot: () => snap, size: 100 }, 'off').line();
    expect(line).toContain('devices 0/100 connected, 5 connecting, 95 to start | 0 waiting to reconnect | 0 msg/s');
    expect(line).not.toContain('connect failures');
  });

  it('sums the rarest reasons as "other" past four', () => {
    expect(reasons({ a: 1, b: 5, c: 3, d: 2, e: 4, f: 1 })).toBe('b 5, e 4, c 3, d 2, other 2');
    expect(reasons({})).toBe('');
  });
});

describe('Stats.merge', () => {
  it('adds counters and tallies, and takes percentiles from the merged histogram', () => {
    const fast = new Stats(1_000);
    const slow = new Stats(2_000);
    for (let i = 0; i < 90; i++) {
      fast.sent++;
      fast.ack(0);
      fast.latency.record(10);
    }
    for (let i = 0; i < 10; i++) {
      slow.sent++;
      slow.ack(i % 2);
      slow.latency.record(1_000);
    }
    fast.connectFailure('ECONNREFUSED');
    slow.connectFailure('ECONNREFUSED');
    slow.connectFailure('http 503');
    // Through JSON, as over IPC.
    const merged = Stats.merge([JSON.parse(JSON.stringify(fast.toJSON())), JSON.parse(JSON.stringify(slow.toJSON()))]);
    expect(merged.startedAt).toBe(1_000);
    expect(merged.sent).toBe(100);
    expect(merged.acks).toEqual({ 0: 95, 1: 5 });
    expect(merged.acked).toBe(100);
    expect(merged.connectFailures).toEqual({ ECONNREFUSED: 2, 'http 503': 1 });
    expect(merged.latency.count).toBe(100);
    expect(merged.latency.max).toBe(1_000);
    // 90 % of the samples are 10 ms: the median is 10 (within the 5 % bucket), p99 is the slow one's.
    expect(merged.latency.quantile(0.5)).toBeGreaterThan(9.5);
    expect(merged.latency.quantile(0.5)).toBeLessThanOrEqual(10.5);
    expect(merged.latency.quantile(0.99)).toBe(1_000);
    expect(merged.latency.sum).toBe(90 * 10 + 10 * 1_000);
  });
});
