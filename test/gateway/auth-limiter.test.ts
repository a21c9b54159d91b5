import { describe, expect, it } from 'vitest';
import { AuthFailureLimiter, addressKey } from '../../src/gateway/auth-limiter.js';

function limiterWithClock(options: { maxFailures?: number; windowMs?: number; blockMs?: number; maxAddresses?: number } = {}) {
  const clock = { now: 1_000_000 };
  const limiter = new AuthFailureLimiter({ ...options, now: () => clock.now });
  return { clock, limiter };
}

describe('AuthFailureLimiter', () => {
  it('allows an address until maxFailures within the window, then blocks it for blockMs', () => {
    const { clock, limiter } = limiterWithClock({ maxFailures: 3, windowMs: 10_000, blockMs: 30_000 });
    limiter.recordFailure('10.0.0.1');
    limiter.recordFailure('10.0.0.1');
    expect(limiter.retryAfterMs('10.0.0.1')).toBe(0);
    limiter.recordFailure('10.0.0.1');
    expect(limiter.retryAfterMs('10.0.0.1')).toBe(30_000);
    clock.now += 12_000;
    expect(limiter.retryAfterMs('10.0.0.1')).toBe(18_000);
    clock.now += 18_000;
    expect(limiter.retryAfterMs('10.0.0.1')).toBe(0);
    // After the block, a single failure does not block again at once.
    limiter.recordFailure('10.0.0.1');
    expect(limiter.retryAfterMs('10.0.0.1')).toBe(0);
  });

  it('counts per address', () => {
    const { limiter } = limiterWithClock({ maxFailures: 2 });
    limiter.recordFailure('10.0.0.1');
    limiter.recordFailure('10.0.0.1');
    expect(limiter.retryAfterMs('10.0.0.1')).toBe(60_000);
    expect(limiter.retryAfterMs('10.0.0.2')).toBe(0);
  });

  it('uses a sliding window: failures older than windowMs do not count', () => {
    const { clock, limiter } = limiterWithClock({ maxFailures: 3, windowMs: 10_000 });
    limiter.recordFailure('a');
    clock.now += 6_000;
    limiter.recordFailure('a');
    clock.now += 6_000; // the first is now 12 s old
    limiter.recordFailure('a');
    expect(limiter.retryAfterMs('a')).toBe(0);
    clock.now += 1_000; // the last three are within 7 s
    limiter.recordFailure('a');
    expect(limiter.retryAfterMs('a')).toBe(60_000);
  });

  it('has defaults of 10 failures per minute and a one-minute block', () => {
    const { limiter } = limiterWithClock();
    for (let i = 0; i < 9; i++) limiter.recordFailure('a');
    expect(limiter.retryAfterMs('a')).toBe(0);
    limiter.recordFailure('a');
    expect(limiter.retryAfterMs('a')).toBe(60_000);
  });

  it('prunes addresses whose window and block are over', () => {
    const { clock, limiter } = limiterWithClock({ maxFailures: 2, windowMs: 1_000, blockMs: 5_000 });
    limiter.recordFailure('old');
    limiter.recordFailure('blocked');
    limiter.recordFailure('blocked');
    expect(limiter.size).toBe(2);
    clock.now += 2_000;
    limiter.recordFailure('new');
    // 'old' expired; 'blocked' is still blocked, so it stays.
    expect(limiter.size).toBe(2);
    expect(limiter.retryAfterMs('blocked')).toBe(3_000);
    clock.now += 4_000;
    limiter.recordFailure('newer');
    expect(limiter.size).toBe(1);
  });

  it('caps the number of tracked addresses, evicting the least recently failed', () => {
    const { limiter } = limiterWithClock({ maxFailures: 2, maxAddresses: 3 });
    limiter.recordFailure('a');
    limiter.recordFailure('a');
    for (const address of ['b', 'c', 'a', 'd']) limiter.recordFailure(address);
    expect(limiter.size).toBe(3);
    // 'b' was the stalest; 'a' failed again recently and is still blocked.
    expect(limiter.retryAfterMs('a')).toBe(60_000);
    expect(limiter.evicted).toBe(1);
    for (let i = 0; i < 1000; i++) limiter.recordFailure(`10.1.${i >> 8}.${i & 255}`);
    expect(limiter.size).toBe(3);
    expect(limiter.evicted).toBe(1001);
  });

  it('counts IPv6 addresses per /64 and IPv4-mapped addresses as IPv4', () => {
    const { limiter } = limiterWithClock({ maxFailures: 2 });
    limiter.recordFailure('2001:db8:1:2::1');
    limiter.recordFailure('2001:db8:1:2:ffff::9');
    expect(limiter.retryAfterMs('2001:0db8:0001:0002:abcd::')).toBe(60_000);
    expect(limiter.retryAfterMs('2001:db8:1:3::1')).toBe(0);
    limiter.recordFailure('::ffff:192.0.2.1');
    limiter.recordFailure('192.0.2.1');
    expect(limiter.retryAfterMs('192.0.2.1')).toBe(60_000);
  });

  it('rejects invalid options when constructed', () => {
    expect(() => new AuthFailureLimiter({ maxFailures: 0 })).toThrow(expect.objectContaining({ code: 'PW_ERR_CONFIG' }));
    expect(() => new AuthFailureLimiter({ windowMs: -1 })).toThrow(/windowMs/);
    expect(() => new AuthFailureLimiter({ blockMs: 1.5 })).toThrow(/blockMs/);
  });
});

describe('addressKey', () => {
  it.each([
    ['192.0.2.1', '192.0.2.1'],
    ['::ffff:192.0.2.1', '192.0.2.1'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['2001:DB8:0:0:1::', '2001:db8:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['1::3:4:5:6:1.2.3.4', '1:0:3:4::/64'],
    ['not-an-ip', 'not-an-ip'],
  ])('%s -> %s', (address, key) => {
    expect(addressKey(address)).toBe(key);
  });
});
