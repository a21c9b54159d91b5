/**
 * Rate limit of failed device authentications per remote address (protocol
 * v1, section 2): after `maxFailures` failures within `windowMs`, the address
 * is refused for `blockMs` before its credentials are even checked.
 *
 * Decisions:
 * - A success does NOT reset the count. Otherwise one valid credential (a
 *   single compromised device) would let an address keep guessing the
 *   secrets of others indefinitely by interleaving one good login.
 * - Failures are counted in a sliding window (the last `maxFailures` failure
 *   times), so bursts across a fixed window boundary get no double allowance.
 * - IPv6 addresses are counted per /64, the usual smallest allocation to one
 *   site: otherwise one host could rotate through 2^64 addresses. IPv4-mapped
 *   IPv6 (::ffff:a.b.c.d) counts as the IPv4 address.
 * - Memory is bounded: entries are kept in least-recently-failed order, those
 *   whose window and block are over are pruned as failures come in, and past
 *   `maxAddresses` the least recently failed one is evicted. A flood from
 *   more than `maxAddresses` sources can thus unblock the oldest; it cannot
 *   grow the heap.
 */

import { isIPv6 } from 'node:net';
import { PulsewireError } from '../errors/catalog.js';

export interface AuthLimiterOptions {
  maxFailures?: number;
  windowMs?: number;
  blockMs?: number;
  maxAddresses?: number;
  now?: () => number;
}

interface Entry {
  /** Times of the latest failures, oldest first, at most maxFailures. */
  failures: number[];
  blockedUntil: number;
}

export class AuthFailureLimiter {
  readonly #maxFailures: number;
  readonly #windowMs: number;
  readonly #blockMs: number;
  readonly #maxAddresses: number;
  readonly #now: () => number;
  /** Insertion order = order of the latest failure: the first entry is the stalest. */
  readonly #entries = new Map<string, Entry>();
  #evicted = 0;

  constructor(options: AuthLimiterOptions = {}) {
    this.#maxFailures = positiveInteger('maxFailures', options.maxFailures ?? 10);
    this.#windowMs = positiveInteger('windowMs', options.windowMs ?? 60_000);
    this.#blockMs = positiveInteger('blockMs', options.blockMs ?? 60_000);
    this.#maxAddresses = positiveInteger('maxAddresses', options.maxAddresses ?? 100_000);
    this.#now = options.now ?? Date.now;
  }

  /** Number of addresses currently tracked (for metrics and tests). */
  get size(): number {
    return this.#entries.size;
  }

  /** Addresses forgotten to stay within maxAddresses while still counted or blocked (a flood from many sources). */
  get evicted(): number {
    return this.#evicted;
  }

  recordFailure(address: string): void {
    const now = this.#now();
    const key = addressKey(address);
    const entry = this.#entries.get(key) ?? { failures: [], blockedUntil: 0 };
    // Re-inserting moves the entry to the end: most recently failed.
    this.#entries.delete(key);
    this.#entries.set(key, entry);

    entry.failures.push(now);
    if (entry.failures.length > this.#maxFailures) entry.failures.shift();
    const oldest = entry.failures[0]!;
    if (entry.failures.length === this.#maxFailures && now - oldest < this.#windowMs) {
      entry.blockedUntil = now + this.#blockMs;
      // A fresh window after the block: one more failure must not block again at once.
      entry.failures = [];
    }
    this.#prune(now);
  }

  /** 0 if the address may try now, otherwise milliseconds until it may. */
  retryAfterMs(address: string): number {
    const entry = this.#entries.get(addressKey(address));
    if (!entry) return 0;
    return Math.max(0, entry.blockedUntil - this.#now());
  }

  #prune(now: number): void {
    for (const [key, entry] of this.#entries) {
      const stale = this.#isStale(entry, now);
      if (this.#entries.size > this.#maxAddresses || stale) {
        this.#entries.delete(key);
        if (!stale) this.#evicted++;
      } else {
        // Entries are in order of latest failure: the rest are fresher.
        break;
      }
    }
  }

  #isStale(entry: Entry, now: number): boolean {
    const last = entry.failures.at(-1) ?? 0;
    return entry.blockedUntil <= now && now - last >= this.#windowMs;
  }
}

/** The key an address is counted under: IPv4 as is, IPv6 by its /64 prefix. */
export function addressKey(address: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!isIPv6(address)) return address;
  return `${expandIPv6(address).slice(0, 4).join(':')}::/64`;
}

/** The eight 16-bit groups of an IPv6 address, as lowercase hex without leading zeros. */
function expandIPv6(address: string): string[] {
  const [head = '', tail] = address.split('%')[0]!.toLowerCase().split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  // An embedded IPv4 tail (64:ff9b::1.2.3.4) fills two groups.
  const width = (groups: string[]) => groups.reduce((n, g) => n + (g.includes('.') ? 2 : 1), 0);
  const missing = 8 - width(left) - width(right);
  const groups = tail === undefined ? left : [...left, ...Array<string>(missing).fill('0'), ...right];
  return groups.map((group) => (group.includes('.') ? group : parseInt(group, 16).toString(16)));
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new PulsewireError('PW_ERR_CONFIG', `AuthFailureLimiter ${name} must be a positive integer, got ${value}`);
  }
  return value;
}
