import { describe, expect, it } from 'vitest';
import { receiptClock } from '../../src/gateway/receipt-clock.js';

describe('receiptClock', () => {
  it('is the wall clock, in microseconds', () => {
    // Bracketed by Date.now() before and after, so a busy machine only widens the bracket. The slack
    // covers Date.now()'s millisecond steps and the monotonic clock drifting from the wall clock.
    const before = Date.now() * 1000;
    const now = receiptClock()();
    const after = Date.now() * 1000;
    expect(now).toBeGreaterThanOrEqual(before - 50_000);
    expect(now).toBeLessThanOrEqual(after + 50_000);
  });

  it('never returns the same time twice, even within one microsecond', () => {
    const clock = receiptClock();
    const times = Array.from({ length: 10_000 }, () => clock());
    expect(new Set(times).size).toBe(times.length);
    for (let i = 1; i < times.length; i++) expect(times[i]!).toBeGreaterThan(times[i - 1]!);
  });
});
