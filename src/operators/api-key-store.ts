/**
 * Operator API keys in the `api-keys` bucket (lmdb with one process,
 * JetStream in a cluster), keyed by key id. A revoked key keeps its record,
 * marked, so listings and the audit log still name it; its digest no longer
 * lets anyone in. Every change is a revision-checked update, so a revocation
 * is never undone by a last-used stamp written at the same moment on another
 * node: the stamp loses, and is simply tried again on a later request.
 */
import { PulsewireError } from '../errors/catalog.js';
import { collect, type Bucket, type Entry } from '../stores/bucket.js';
import { newKeyMaterial } from './api-key-token.js';
import type { Scope } from './scopes.js';

export type ApiKeyRecord = {
  readonly id: string;
  readonly name: string;
  readonly scope: Scope;
  /** SHA-256 of the secret, hex (api-key-token.ts). */
  readonly digest: string;
  readonly createdAt: number;
  readonly expiresAt?: number;
  /** Written lazily: at most once per LAST_USED_STEP_MS per key. */
  readonly lastUsedAt?: number;
  readonly revokedAt?: number;
};

/** last-used-at is a hint for operators ("is this key still in use?"), not a log: a minute's resolution spares a write per request. */
export const LAST_USED_STEP_MS = 60_000;
/** More keys than any fleet's operators need; bounds the listing and the store. */
export const MAX_KEYS = 1000;

export class ApiKeyStore {
  readonly #bucket: Bucket<ApiKeyRecord>;
  readonly #now: () => number;
  readonly #stamping = new Set<string>();

  constructor(bucket: Bucket<ApiKeyRecord>, options: { now?: () => number } = {}) {
    this.#bucket = bucket;
    this.#now = options.now ?? Date.now;
  }

  /** A new key; the token is returned only here (the store keeps its digest). */
  async create(input: { name: string; scope: Scope; expiresAt?: number }): Promise<{ record: ApiKeyRecord; token: string }> {
    const now = this.#now();
    if (input.expiresAt !== undefined && input.expiresAt <= now) throw new PulsewireError('PW_ERR_BAD_REQUEST', 'expiresAt must be in the future');
    if ((await collect(this.#bucket.entries(), MAX_KEYS)).length >= MAX_KEYS) throw new PulsewireError('PW_ERR_KEYS_FULL', `at most ${MAX_KEYS} keys`);
    for (;;) {
      const material = newKeyMaterial();
      const record: ApiKeyRecord = {
        id: material.id, name: input.name, scope: input.scope, digest: material.digest, createdAt: now,
        ...(input.expiresAt !== undefined ? { expiresAt: input.expiresAt } : {}),
      };
      // 64 random bits: a collision is all but impossible, but create-if-absent makes it harmless.
      if ((await this.#bucket.create(material.id, record)) !== undefined) return { record, token: material.token };
    }
  }

  async get(id: string): Promise<Entry<ApiKeyRecord> | undefined> {
    return this.#bucket.get(id);
  }

  async list(): Promise<ApiKeyRecord[]> {
    return (await collect(this.#bucket.entries(), MAX_KEYS)).map((entry) => entry.value);
  }

  /** Marks the key revoked; false when there is no such key. Revoking twice keeps the first time. */
  async revoke(id: string): Promise<ApiKeyRecord | undefined> {
    for (;;) {
      const entry = await this.#bucket.get(id);
      if (!entry) return undefined;
      if (entry.value.revokedAt !== undefined) return entry.value;
      const revoked = { ...entry.value, revokedAt: this.#now() };
      if ((await this.#bucket.update(id, revoked, entry.revision)) !== undefined) return revoked;
    }
  }

  /**
   * Records a use, unless one was recorded less than LAST_USED_STEP_MS ago.
   * Not awaited by requests; a lost race (the key changed) just skips this stamp.
   */
  async touch(entry: Entry<ApiKeyRecord>): Promise<void> {
    const now = this.#now();
    const { value } = entry;
    if (now - (value.lastUsedAt ?? 0) < LAST_USED_STEP_MS || this.#stamping.has(value.id)) return;
    this.#stamping.add(value.id);
    try {
      await this.#bucket.update(value.id, { ...value, lastUsedAt: now }, entry.revision);
    } finally {
      this.#stamping.delete(value.id);
    }
  }

  /** Calls `listener` with every key revoked or deleted from now on, on any node. */
  onRevoked(listener: (id: string) => void): () => void {
    return this.#bucket.watch((change) => {
      if (change.value === undefined || change.value.revokedAt !== undefined) listener(change.key as string);
    });
  }
}
