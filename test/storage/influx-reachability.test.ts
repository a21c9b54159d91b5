import { afterEach, describe, expect, it, vi } from 'vitest';
import { InfluxReachability } from '../../src/storage/influx-reachability.js';

describe('InfluxReachability (what /readyz says of InfluxDB)', () => {
  afterEach(() => { vi.useRealTimers(); });

  it('answers from the background ping while it is fresh, and follows InfluxDB within a ping period', async () => {
    vi.useFakeTimers({ now: 0 });
    let up = true;
    let pings = 0;
    const r = new InfluxReachability(async () => { pings++; return up; }, { everyMs: 1000, staleMs: 3000, now: () => Date.now() });
    r.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(pings).toBe(1);
    // Many probes, no extra pings: the answer is the background one's.
    for (let i = 0; i < 50; i++) expect(await r.reachable()).toBe(true);
    expect(pings).toBe(1);
    up = false;
    await vi.advanceTimersByTimeAsync(1000);
    expect(await r.reachable()).toBe(false);
    up = true;
    await vi.advanceTimersByTimeAsync(1000);
    expect(await r.reachable()).toBe(true);
    expect(pings).toBe(3);
    r.stop();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(pings).toBe(3);
  });

  it('pings itself when the last answer is stale (not started, or the timer late), one ping for probes that ask together', async () => {
    let resolvePing: (ok: boolean) => void = () => undefined;
    let pings = 0;
    let now = 0;
    const r = new InfluxReachability(() => { pings++; return new Promise((resolve) => { resolvePing = resolve; }); }, { staleMs: 3000, now: () => now });
    const a = r.reachable();
    const b = r.reachable();
    expect(pings).toBe(1);
    resolvePing(false);
    expect([await a, await b]).toEqual([false, false]);
    now += 2999;
    expect(await r.reachable()).toBe(false);
    expect(pings).toBe(1);
    now += 1;
    const c = r.reachable();
    expect(pings).toBe(2);
    resolvePing(true);
    expect(await c).toBe(true);
  });

  it('a ping that throws counts as unreachable', async () => {
    const r = new InfluxReachability(async () => { throw new Error('boom'); });
    expect(await r.reachable()).toBe(false);
  });
});
