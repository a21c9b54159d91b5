/**
 * The page's store of firing alerts (dashboards/web/src/store.ts), without a
 * browser: a snapshot replaces them, events add a firing alert and drop a
 * resolved one, and listeners hear that alerts changed.
 */
import { describe, expect, it } from 'vitest';
import { FleetStore, type FleetChange } from '../../dashboards/web/src/store.js';
import type { AlertView } from '../../src/alerts/types.js';

const alert = (device: string, state: AlertView['state'], firingSince: number): AlertView => ({
  id: `r1/${device}/temp`, ruleId: 'r1', ruleName: 'hot', deviceId: device, series: 'temp',
  condition: { kind: 'above', threshold: 80 }, state, value: 90, firingSince, ...(state === 'resolved' ? { resolvedAt: firingSince + 1 } : {}),
});

describe('fleet store: alerts', () => {
  it('a snapshot sets the firing alerts (oldest first); events add firing ones and drop resolved ones', () => {
    const store = new FleetStore();
    const changes: FleetChange[] = [];
    store.listen((change) => changes.push(change));
    store.applySnapshot({ type: 'snapshot', seq: 1, counts: { online: 0, offline: 0 }, devices: [], latest: [], alerts: [alert('b', 'firing', 20), alert('a', 'firing', 10)] });
    expect([...store.alerts.keys()]).toEqual(['r1/a/temp', 'r1/b/temp']);
    expect(changes.at(-1)!.alerts).toBe(true);

    store.applyEvents({ type: 'events', seq: 2, alerts: [alert('c', 'firing', 30), alert('a', 'resolved', 10)] });
    expect([...store.alerts.keys()]).toEqual(['r1/b/temp', 'r1/c/temp']);
    expect(store.alertsOf('c')).toMatchObject([{ deviceId: 'c', state: 'firing' }]);
    expect(store.alertsOf('a')).toEqual([]);
    expect(changes.at(-1)!.alerts).toBe(true);

    store.applyEvents({ type: 'events', seq: 3, readings: [{ device: 'b', name: 'temp', t: 1, kind: 'value', v: 1 }] });
    expect(changes.at(-1)!.alerts).toBe(false);
    // A snapshot from a hub without alert rules (no `alerts`) clears them.
    store.applySnapshot({ type: 'snapshot', seq: 4, counts: { online: 0, offline: 0 }, devices: [], latest: [] });
    expect(store.alerts.size).toBe(0);
  });
});
