/** Pure parts of the HTTP fallback: presence tracking, request budget, element spans of a batch. */
import { describe, expect, it } from 'vitest';
import { PresenceTracker, type Presence } from '../../src/gateway/http/presence.js';
import { RequestBudget } from '../../src/gateway/http/request-budget.js';
import { arrayElementSpans } from '../../src/protocol/cbor-scan.js';

const fakeLink = (name: string, timedOut: string[]): Presence & { name: string } => ({
  name, openRequests: 0, onIdleTimeout: () => timedOut.push(name),
});

describe('PresenceTracker', () => {
  it('times out links idle for timeoutMs, never one with a request open', () => {
    let now = 0;
    const timedOut: string[] = [];
    const tracker = new PresenceTracker({ timeoutMs: 100, sweepMs: 10, now: () => now });
    const a = fakeLink('a', timedOut);
    const b = fakeLink('b', timedOut);
    tracker.requestStarted(a); tracker.requestEnded(a); // idle from 0
    now = 50;
    tracker.requestStarted(b); // open: never times out while open
    now = 99; tracker.sweep();
    expect(timedOut).toEqual([]);
    now = 100; tracker.sweep();
    expect(timedOut).toEqual(['a']);
    now = 1000; tracker.sweep();
    expect(timedOut).toEqual(['a']);
    tracker.requestEnded(b); // idle from 1000
    now = 1099; tracker.sweep();
    expect(timedOut).toEqual(['a']);
    now = 1100; tracker.sweep();
    expect(timedOut).toEqual(['a', 'b']);
  });

  it('a new request moves a link to the back; the sweep stops at the first fresh one; forget drops it', () => {
    let now = 0;
    const timedOut: string[] = [];
    const tracker = new PresenceTracker({ timeoutMs: 100, sweepMs: 10, now: () => now });
    const links = ['a', 'b', 'c'].map((n) => fakeLink(n, timedOut));
    for (const link of links) { tracker.requestStarted(link); tracker.requestEnded(link); now += 10; }
    now = 60;
    tracker.requestStarted(links[0]!); tracker.requestEnded(links[0]!); // a: idle from 60
    tracker.forget(links[2]!);
    now = 130; tracker.sweep();
    expect(timedOut).toEqual(['b']);
    expect(tracker.idleCount).toBe(1);
    now = 160; tracker.sweep();
    expect(timedOut).toEqual(['b', 'a']);
  });

  it('two open requests: idle only after both ended', () => {
    let now = 0;
    const timedOut: string[] = [];
    const tracker = new PresenceTracker({ timeoutMs: 10, sweepMs: 10, now: () => now });
    const a = fakeLink('a', timedOut);
    tracker.requestStarted(a); tracker.requestStarted(a); tracker.requestEnded(a);
    now = 100; tracker.sweep();
    expect(timedOut).toEqual([]);
    tracker.requestEnded(a);
    now = 110; tracker.sweep();
    expect(timedOut).toEqual(['a']);
  });
});

describe('RequestBudget', () => {
  it('lets a burst of max(10, 2 x rate) through, then one per 1/rate s, saying how long to wait', () => {
    let now = 0;
    const budget = new RequestBudget({ ratePerS: 2, now: () => now });
    for (let i = 0; i < 10; i++) expect(budget.takeRequest()).toBe(0);
    expect(budget.takeRequest()).toBe(500);
    now = 500;
    expect(budget.takeRequest()).toBe(0);
    expect(budget.takeRequest()).toBeGreaterThan(0);
  });

  it('keeps the window of 32 TELEMETRY messages across requests', () => {
    const budget = new RequestBudget({ ratePerS: 1 });
    expect(budget.fitsWindow(32)).toBe(true);
    budget.telemetryInFlight = 30;
    expect(budget.fitsWindow(2)).toBe(true);
    expect(budget.fitsWindow(3)).toBe(false);
  });
});

describe('arrayElementSpans', () => {
  const hex = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));
  const slices = (h: string) => arrayElementSpans(hex(h))?.map(({ start, end }) => h.slice(2 * start, 2 * end));

  it('finds each element of a definite array, byte for byte', () => {
    const telemetry = '83010782a5006474656d70016343656c02fb4037800000000000216664657634322f221a69248100a4006368756d01632552480218290601';
    const result = '840464632d303101a1626f6bf5';
    expect(slices(`82${telemetry}${result}`)).toEqual([telemetry, result]);
    expect(slices('80')).toEqual([]);
  });

  it('handles indefinite lengths, long heads, strings in chunks and floats', () => {
    // [_ [1, 300, [{0: "a"}]], [5, {_ "k": (_ "v", "w")}], 1.5f16 ]
    const first = '830119012c81a1006161';
    const second = '8205bf616b7f61766177ffff';
    expect(slices(`9f${first}${second}f93e00ff`)).toEqual([first, second, 'f93e00']);
  });

  it('undefined for anything but an array', () => {
    expect(arrayElementSpans(hex('a0'))).toBeUndefined();
    expect(arrayElementSpans(new Uint8Array())).toBeUndefined();
  });
});
