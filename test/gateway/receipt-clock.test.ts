import { describe, expect, it } from 'vitest';
import { receiptClock } from '../../src/gateway/receipt-clock.js';

describe('receiptClock', () => {
  it('is close to the wall clock, in microseconds', () => {
    const now = receiptClock()();
    expect(Math.abs(now - Date.now() * 1000)).toBeLessThan(50_000);
  });

  it('never returns the same time twice, even within one microsecond', () => {
    const clock = receiptClock();
    const times = Array.from({ length: 10_000 }, () => clock());
    expect(new Set(times).size).toBe(times.length);
    for (let i = 1; i < times.length; i++) expect(times[i]!).toBeGreaterThan(times[i - 1]!);
  });
});
