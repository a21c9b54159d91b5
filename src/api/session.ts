/**
 * Browser sessions for operators. A browser page cannot keep an operator
 * key out of reach of scripts, so `POST /v1/login` trades it for a cookie
 * that scripts cannot read (HttpOnly) and other sites cannot send
 * (SameSite=Strict). The cookie is not the key: it is an expiry, a nonce and
 * the id of the key it was opened with, signed with a key derived from the
 * bootstrap token, so it is worthless once expired, logged out, its key
 * revoked (operator-auth.ts looks the key up on every request), or the token
 * changed, and leaking it never leaks a key.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { BOOTSTRAP_KEY_ID } from '../operators/operator-keys.js';

export const SESSION_COOKIE = 'pulsewire_session';
export const SESSION_TTL_MS = 12 * 3600_000;

/** Logged-out sessions remembered until they expire; past this many the oldest are forgotten. */
const MAX_REVOKED = 10_000;

/**
 * Where logged-out sessions are remembered until they expire. The hub keeps
 * them in lmdb, so a cookie taken from a logged-out browser stays dead across
 * a restart; memory is enough for units.
 */
export interface RevokedSessions {
  has(nonce: string): Promise<boolean>;
  add(nonce: string, expiresAt: number): Promise<void>;
  /** Forgets the expired ones, then the oldest while more than `max` remain. */
  prune(now: number, max: number): Promise<void>;
}

export class MemoryRevokedSessions implements RevokedSessions {
  readonly #byNonce = new Map<string, number>();
  async has(nonce: string): Promise<boolean> {
    return this.#byNonce.has(nonce);
  }
  async add(nonce: string, expiresAt: number): Promise<void> {
    this.#byNonce.set(nonce, expiresAt);
  }
  async prune(now: number, max: number): Promise<void> {
    for (const [nonce, expiresAt] of this.#byNonce) if (expiresAt <= now) this.#byNonce.delete(nonce);
    while (this.#byNonce.size > max) this.#byNonce.delete(this.#byNonce.keys().next().value!);
  }
}

export class SessionKeys {
  readonly #key: Buffer;
  readonly #now: () => number;
  readonly #revoked: RevokedSessions;

  constructor(operatorToken: string, options: { now?: () => number; revoked?: RevokedSessions } = {}) {
    this.#key = createHmac('sha256', operatorToken).update('pulsewire-session-v1').digest();
    this.#now = options.now ?? Date.now;
    this.#revoked = options.revoked ?? new MemoryRevokedSessions();
  }

  /** A session for the operator key `keyId` (default: the bootstrap key); never outlives `expiresAt` when given. */
  issue(options: { keyId?: string; ttlMs?: number; expiresAt?: number } = {}): { value: string; maxAgeS: number } {
    const now = this.#now();
    const ttlMs = Math.min(options.ttlMs ?? SESSION_TTL_MS, (options.expiresAt ?? Infinity) - now);
    const payload = `${now + ttlMs}.${randomBytes(16).toString('base64url')}.${options.keyId ?? BOOTSTRAP_KEY_ID}`;
    return { value: `${payload}.${this.#mac(payload)}`, maxAgeS: Math.max(0, Math.floor(ttlMs / 1000)) };
  }

  async verify(value: string): Promise<boolean> {
    return (await this.keyIdOf(value)) !== undefined;
  }

  /** The key a live session was opened with; undefined for a forged, expired or logged-out one. */
  async keyIdOf(value: string): Promise<string | undefined> {
    const parsed = this.#parse(value);
    if (parsed === undefined || parsed.expiresAt <= this.#now() || (await this.#revoked.has(parsed.nonce))) return undefined;
    return parsed.keyId;
  }

  /** Logout: a stateless cookie would stay valid until it expires unless the hub remembers it. */
  async revoke(value: string): Promise<void> {
    const parsed = this.#parse(value);
    if (!parsed) return;
    await this.#revoked.prune(this.#now(), MAX_REVOKED - 1);
    await this.#revoked.add(parsed.nonce, parsed.expiresAt);
  }

  #parse(value: string): { expiresAt: number; nonce: string; keyId: string } | undefined {
    const match = /^(\d{1,16})\.([A-Za-z0-9_-]{22})\.(bootstrap|[0-9a-f]{16})\.([A-Za-z0-9_-]{43})$/.exec(value);
    if (!match) return undefined;
    const expected = Buffer.from(this.#mac(`${match[1]}.${match[2]}.${match[3]}`));
    const given = Buffer.from(match[4]!);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    return { expiresAt: Number(match[1]), nonce: match[2]!, keyId: match[3]! };
  }

  #mac(payload: string): string {
    return createHmac('sha256', this.#key).update(payload).digest('base64url');
  }
}

export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

export function sessionCookie(value: string, maxAgeS: number, secure: boolean): string {
  return `${SESSION_COOKIE}=${value}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${maxAgeS}${secure ? '; Secure' : ''}`;
}

export function clearedSessionCookie(secure: boolean): string {
  return `${SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0${secure ? '; Secure' : ''}`;
}
