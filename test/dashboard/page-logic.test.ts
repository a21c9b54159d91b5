/**
 * The page's pure parts, without a browser: reconnect backoff, the SSE
 * address, the fleet store (counts, ordering, recently offline) and the
 * desired/reported delta.
 */
import { describe, expect, it } from 'vitest';
import { backoffMs, sseUrl } from '../../dashboards/web/src/reconnect.js';
import { computeDelta } from '../../dashboards/web/src/state-delta.js';
import { FleetStore } from '../../dashboards/web/src/store.js';

describe('reconnect backoff', () => {
  it('doubles from the base up to the cap, with jitter in the upper half', () => {
    const max = (attempt: number) => backoffMs(attempt, 500, 30_000, () => 1);
    const min = (attempt: number) => backoffMs(attempt, 500, 30_000, () => 0);
    expect([1, 2, 3, 4, 5].map(max)).toEqual([500, 1000, 2000, 4000, 8000]);
    expect(max(20)).toBe(30_000);
    expect(min(3)).toBe(1000);
  });
});

describe('SSE address', () => {
  it('carries the filter in the query and never a token', () => {
    expect(sseUrl({})).toBe('/v1/live/sse');
    expect(sseUrl({ devices: ['boiler-1', 'sensor-*'] })).toBe('/v1/live/sse?devices=boiler-1%2Csensor-*');
    expect(sseUrl({ devices: ['a'], names: ['temp'] })).toBe('/v1/live/sse?devices=a&names=temp');
  });
});

describe('fleet store', () => {
  const snapshot = () => ({
    type: 'snapshot' as const, seq: 1, counts: { online: 2, offline: 1 },
    devices: [
      { device: 'b', online: true, at: 10, reason: 'connected' },
      { device: 'a', online: false, at: 20, reason: 'ping-timeout' },
      { device: 'c', online: true, at: 30, reason: 'connected' },
    ],
    latest: [{ device: 'c', name: 'temp', t: 5, kind: 'value' as const, v: 21 }],
  });

  it('counts, sorts and keeps the newest reading', () => {
    const store = new FleetStore();
    store.applySnapshot(snapshot());
    expect([store.onlineCount, store.offlineCount]).toEqual([2, 1]);
    expect(store.sortedIds).toEqual(['a', 'b', 'c']);
    store.applyEvents({ type: 'events', seq: 2, readings: [{ device: 'c', name: 'temp', t: 4, kind: 'value', v: 99 }, { device: 'd', name: 'x', t: 6, kind: 'value', v: 1 }] });
    expect(store.latest.get('c')?.get('temp')?.v).toBe(21);
    expect(store.sortedIds).toEqual(['a', 'b', 'c', 'd']);
    expect(store.onlineCount).toBe(3);
  });

  it('ignores a status older than what it has, and lists recently offline newest first', () => {
    const store = new FleetStore();
    store.applySnapshot(snapshot());
    store.applyEvents({ type: 'events', seq: 2, status: [{ device: 'b', online: false, at: 50, reason: 'closed by device' }, { device: 'c', online: false, at: 5, reason: 'stale' }] });
    expect(store.onlineCount).toBe(1);
    expect(store.recentlyOffline(5).map((e) => [e.id, e.reason])).toEqual([['b', 'closed by device'], ['a', 'ping-timeout']]);
    expect(store.recentlyOffline(1).map((e) => e.id)).toEqual(['b']);
  });

  it('drops a removed device with its series, and counts a newly registered one as offline', () => {
    const store = new FleetStore();
    store.applySnapshot(snapshot());
    store.applyEvents({ type: 'events', seq: 2, status: [
      { device: 'c', online: false, at: 40, reason: 'removed', removed: true },
      { device: 'e', online: false, at: 41, reason: 'never connected' },
    ] });
    expect(store.sortedIds).toEqual(['a', 'b', 'e']);
    expect([store.onlineCount, store.offlineCount]).toEqual([1, 2]);
    expect(store.latest.has('c')).toBe(false);
  });
});

describe('desired/reported delta', () => {
  it('holds the desired keys whose value reported does not show', () => {
    expect(computeDelta({ led: true, interval: 5, cfg: { a: [1, 2] } }, { led: true, interval: 10, cfg: { a: [1, 2] } })).toEqual({ interval: 5 });
    expect(computeDelta({ x: { y: 1 } }, {})).toEqual({ x: { y: 1 } });
  });
});
