/**
 * Who a credential belongs to. An operator presents either the bootstrap key
 * (PULSEWIRE_OPERATOR_TOKEN, admin, never revoked through the API: it changes
 * with the configuration) or an API key from the store; a browser session
 * names the key it was opened with, so a session dies with its key. Anything
 * that does not match is PW_ERR_OPERATOR_AUTH; a key whose secret matches but
 * that was revoked or has expired is told so (PW_ERR_KEY_REVOKED,
 * PW_ERR_KEY_EXPIRED): only its holder can learn that.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { PulsewireError } from '../errors/catalog.js';
import type { Entry } from '../stores/bucket.js';
import type { ApiKeyRecord, ApiKeyStore } from './api-key-store.js';
import { parseKeyToken, secretMatches } from './api-key-token.js';
import type { Scope } from './scopes.js';

/** The operator a request was made by, as the audit log names it. */
export type Operator = {
  readonly keyId: string;
  readonly name: string;
  readonly scope: Scope;
  readonly expiresAt?: number;
};

export const BOOTSTRAP_KEY_ID = 'bootstrap';
export const BOOTSTRAP: Operator = { keyId: BOOTSTRAP_KEY_ID, name: 'operator-token', scope: 'admin' };

type Logger = { warn(obj: object, msg: string): void };

export class OperatorKeys {
  readonly #bootstrapDigest: Buffer;
  readonly #store: ApiKeyStore;
  readonly #now: () => number;
  readonly #logger: Logger | undefined;

  constructor(opts: { bootstrapToken: string; store: ApiKeyStore; now?: () => number; logger?: Logger }) {
    this.#bootstrapDigest = sha256(opts.bootstrapToken);
    this.#store = opts.store;
    this.#now = opts.now ?? Date.now;
    this.#logger = opts.logger;
  }

  get store(): ApiKeyStore {
    return this.#store;
  }

  /** True when `candidate` is the bootstrap key (constant time over digests: neither content nor length leaks). */
  isBootstrap(candidate: string): boolean {
    return timingSafeEqual(sha256(candidate), this.#bootstrapDigest);
  }

  /** The operator holding this bearer token; throws PulsewireError (401) when it lets nobody in. */
  async fromToken(token: string): Promise<Operator> {
    if (this.isBootstrap(token)) return BOOTSTRAP;
    const parsed = parseKeyToken(token);
    if (!parsed) throw new PulsewireError('PW_ERR_OPERATOR_AUTH');
    const entry = await this.#store.get(parsed.id);
    if (!entry || !secretMatches(parsed.secret, entry.value.digest)) throw new PulsewireError('PW_ERR_OPERATOR_AUTH');
    return this.#usable(entry);
  }

  /** The operator of a browser session, by the key it was opened with. */
  async fromKeyId(keyId: string): Promise<Operator> {
    if (keyId === BOOTSTRAP_KEY_ID) return BOOTSTRAP;
    const entry = await this.#store.get(keyId);
    if (!entry) throw new PulsewireError('PW_ERR_OPERATOR_AUTH');
    return this.#usable(entry);
  }

  #usable(entry: Entry<ApiKeyRecord>): Operator {
    const key = entry.value;
    if (key.revokedAt !== undefined) throw new PulsewireError('PW_ERR_KEY_REVOKED', key.name);
    if (key.expiresAt !== undefined && key.expiresAt <= this.#now()) throw new PulsewireError('PW_ERR_KEY_EXPIRED', key.name);
    this.#store.touch(entry).catch((err: unknown) => this.#logger?.warn({ err, keyId: key.id }, 'operator key last-used-at not written'));
    return { keyId: key.id, name: key.name, scope: key.scope, ...(key.expiresAt !== undefined ? { expiresAt: key.expiresAt } : {}) };
  }
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
