/**
 * Browser sessions for operators. A browser page cannot keep the operator
 * token out of reach of scripts, so `POST /v1/login` trades it for a cookie
 * that scripts cannot read (HttpOnly) and other sites cannot send
 * (SameSite=Strict). The cookie is not the token: it is an expiry and a nonce
 * signed with a key derived from the token, so it is worthless once expired,
 * logged out, or the token is changed, and leaking it never leaks the token.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

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

  issue(ttlMs = SESSION_TTL_MS): { value: string; maxAgeS: number } {
    const payload = `${this.#now() + ttlMs}.${randomBytes(16).toString('base64url')}`;
    return { value: `${payload}.${this.#mac(payload)}`, maxAgeS: Math.floor(ttlMs / 1000) };
  }

  async verify(value: string): Promise<boolean> {
    const parsed = this.#parse(value);
    return parsed !== undefined && parsed.expiresAt > this.#now() && !(await this.#revoked.has(parsed.nonce));
  }

  /** Logout: a stateless cookie would stay valid until it expires unless the hub remembers it. */
  async revoke(value: string): Promise<void> {
    const parsed = this.#parse(value);
    if (!parsed) return;
    await this.#revoked.prune(this.#now(), MAX_REVOKED - 1);
    await this.#revoked.add(parsed.nonce, parsed.expiresAt);
  }

  #parse(value: string): { expiresAt: number; nonce: string } | undefined {
    const match = /^(\d{1,16})\.([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$/.exec(value);
    if (!match) return undefined;
    const expected = Buffer.from(this.#mac(`${match[1]}.${match[2]}`));
    const given = Buffer.from(match[3]!);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    return { expiresAt: Number(match[1]), nonce: match[2]! };
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
