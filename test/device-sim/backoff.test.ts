import { describe, expect, it } from 'vitest';
import { afterEnding, backoffDelay, DEFAULT_TIMING, type BackoffTiming } from '../../device-sim/backoff.js';

const timing: BackoffTiming = DEFAULT_TIMING;
const fixed = (x: number) => () => x;
const almostOne = 0.999_999; // the largest value a Math.random-like source gives, near enough

describe('backoffDelay (full jitter, base 1 s, cap 60 s)', () => {
  it('stays within [0, min(cap, base * 2^attempt)) for every attempt', () => {
    for (let attempt = 0; attempt < 12; attempt++) {
      const ceiling = Math.min(60_000, 1_000 * 2 ** attempt);
      expect(backoffDelay(attempt, timing, fixed(0))).toBe(0);
      expect(backoffDelay(attempt, timing, fixed(0.5))).toBeCloseTo(ceiling / 2, 6);
      const top = backoffDelay(attempt, timing, fixed(almostOne));
      expect(top).toBeLessThan(ceiling);
      expect(top).toBeGreaterThan(ceiling * 0.999);
    }
  });

  it('is capped at 60 s however many attempts failed (no Infinity or NaN)', () => {
    expect(backoffDelay(2_000, timing, fixed(almostOne))).toBeLessThan(60_000);
    expect(backoffDelay(2_000, timing, fixed(almostOne))).toBeGreaterThan(59_999);
  });

  it('spreads a fleet out: real random delays at attempt 3 cover [0, 8 s)', () => {
    const delays = Array.from({ length: 2_000 }, () => backoffDelay(3, timing));
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...delays)).toBeLessThan(8_000);
    // Full jitter: a good share in each quarter of the range, not clustered at the ceiling.
    for (let q = 0; q < 4; q++) expect(delays.filter((d) => d >= q * 2_000 && d < (q + 1) * 2_000).length).toBeGreaterThan(350);
  });
});

describe('afterEnding: close codes of protocol section 5', () => {
  const closed = (code: number, ownReboot = false) => ({ kind: 'closed' as const, code, ownReboot });
  const half = fixed(0.5);

  it.each([1001, 1011, 1012, 1006])('%i: reconnect with backoff, attempt increases', (code) => {
    const d = afterEnding(closed(code), 3, false, timing, half);
    expect(d.delayMs).toBe(4_000); // half of min(60 s, 1 s * 2^3)
    expect(d.nextAttempt).toBe(4);
    expect(d.firmwareError).toBe(false);
  });

  it.each([1003, 1007, 1009])('%i: counted as a firmware error, reconnect with backoff', (code) => {
    const d = afterEnding(closed(code), 0, false, timing, half);
    expect(d.firmwareError).toBe(true);
    expect(d.delayMs).toBe(500);
  });

  it('4000 (replaced): no reconnect at once, but after 60 to 120 s', () => {
    expect(afterEnding(closed(4000), 0, false, timing, fixed(0)).delayMs).toBe(60_000);
    expect(afterEnding(closed(4000), 0, false, timing, fixed(almostOne)).delayMs).toBeLessThan(120_000);
  });

  it('1008 (policy) backs off long: 5 to 10 minutes', () => {
    expect(afterEnding(closed(1008), 0, false, timing, fixed(0)).delayMs).toBe(300_000);
    expect(afterEnding(closed(1008), 0, false, timing, fixed(almostOne)).delayMs).toBeLessThan(600_000);
  });

  it('1000: our own reboot reconnects after the reboot pause; from the hub, only after a long wait', () => {
    const reboot = afterEnding(closed(1000, true), 5, false, timing, half);
    expect(reboot.delayMs).toBe(timing.rebootPauseMs);
    expect(reboot.nextAttempt).toBe(0);
    expect(afterEnding(closed(1000), 0, false, timing, fixed(0)).delayMs).toBe(60_000);
  });

  it('a stable connection resets the attempt counter before deciding', () => {
    expect(afterEnding(closed(1012), 9, true, timing, half).delayMs).toBe(500);
    expect(afterEnding(closed(1012), 9, true, timing, half).nextAttempt).toBe(1);
    expect(afterEnding(closed(1012), 9, false, timing, half).delayMs).toBe(30_000);
  });

  it('refused handshakes: 401/429 wait long, other statuses and no connection back off', () => {
    expect(afterEnding({ kind: 'refused', status: 401 }, 0, false, timing, fixed(0)).delayMs).toBe(300_000);
    expect(afterEnding({ kind: 'refused', status: 429 }, 0, false, timing, fixed(0)).delayMs).toBe(300_000);
    expect(afterEnding({ kind: 'refused', status: 503 }, 2, false, timing, half).delayMs).toBe(2_000);
    expect(afterEnding({ kind: 'unreachable' }, 1, false, timing, half)).toMatchObject({ delayMs: 1_000, nextAttempt: 2 });
  });
});
