/**
 * The operator key store's contract on both backends (lmdb with one process,
 * JetStream in a cluster): a key is stored as a digest, never as its secret;
 * revocation sticks across a reopen and wins over a last-used stamp racing
 * it; last-used-at is written at most once a minute; every revocation is
 * heard by a watcher, including one on another store instance (another node).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ApiKeyStore, LAST_USED_STEP_MS } from '../../src/operators/api-key-store.js';
import { parseKeyToken, secretMatches } from '../../src/operators/api-key-token.js';
import { BACKENDS, type StoresHandle } from '../support/stores.js';
import { until } from '../support/wait.js';

describe.each(BACKENDS)('operator keys on $name', (backend) => {
  let handle: StoresHandle;
  let now = 1_800_000_000_000;
  const clock = { now: () => now };
  beforeEach(async () => { handle = await backend.open(); });
  afterEach(async () => { await handle.close(); });

  it('a new key is stored as a digest with its name, scope, created-at and expiry; the token appears nowhere in the store', async () => {
    const store = new ApiKeyStore(handle.stores.apiKeys, clock);
    const { record, token } = await store.create({ name: 'grafana', scope: 'read', expiresAt: now + 3_600_000 });
    const parsed = parseKeyToken(token)!;
    expect(parsed.id).toBe(record.id);
    const stored = (await store.get(record.id))!.value;
    expect(stored).toEqual({ id: record.id, name: 'grafana', scope: 'read', digest: record.digest, createdAt: now, expiresAt: now + 3_600_000 });
    expect(secretMatches(parsed.secret, stored.digest)).toBe(true);
    expect(secretMatches(parsed.secret.replace(/^./, (c) => (c === 'A' ? 'B' : 'A')), stored.digest)).toBe(false);
    expect(JSON.stringify(await store.list())).not.toContain(parsed.secret);
    await expect(store.create({ name: 'late', scope: 'read', expiresAt: now })).rejects.toMatchObject({ code: 'PW_ERR_BAD_REQUEST' });
  });

  it('a revocation survives a reopen, keeps its first time, and a last-used stamp racing it never undoes it', async () => {
    const store = new ApiKeyStore(handle.stores.apiKeys, clock);
    const { record } = await store.create({ name: 'ci', scope: 'operate' });
    const before = (await store.get(record.id))!;
    now += LAST_USED_STEP_MS;
    const revoked = await store.revoke(record.id);
    expect(revoked?.revokedAt).toBe(now);
    // The stamp was decided on the entry read before the revocation: its revision is stale, so it is dropped.
    await store.touch(before);
    now += 1000;
    expect((await store.revoke(record.id))?.revokedAt).toBe(now - 1000);
    const reopened = new ApiKeyStore((await handle.reopen()).apiKeys, clock);
    const after = (await reopened.get(record.id))!.value;
    expect(after.revokedAt).toBe(now - 1000);
    expect(after.lastUsedAt).toBeUndefined();
    expect(await reopened.revoke('0000000000000000')).toBeUndefined();
  });

  it('last-used-at is written on first use, then at most once per step', async () => {
    const store = new ApiKeyStore(handle.stores.apiKeys, clock);
    const { record } = await store.create({ name: 'node-red', scope: 'operate' });
    await store.touch((await store.get(record.id))!);
    expect((await store.get(record.id))!.value.lastUsedAt).toBe(now);
    const first = now;
    now += LAST_USED_STEP_MS - 1;
    await store.touch((await store.get(record.id))!);
    expect((await store.get(record.id))!.value.lastUsedAt).toBe(first);
    now += 1;
    await store.touch((await store.get(record.id))!);
    expect((await store.get(record.id))!.value.lastUsedAt).toBe(now);
  });

  it('every node hears of a revocation made on any node', async () => {
    const a = new ApiKeyStore(handle.stores.apiKeys, clock);
    const b = new ApiKeyStore(handle.stores.apiKeys, clock);
    const { record } = await a.create({ name: 'dash', scope: 'read' });
    const heardA: string[] = [];
    const heardB: string[] = [];
    const offA = a.onRevoked((id) => heardA.push(id));
    const offB = b.onRevoked((id) => heardB.push(id));
    await b.touch((await b.get(record.id))!); // a change that is not a revocation is not reported
    await b.revoke(record.id);
    await until(() => (heardA.length > 0 && heardB.length > 0 ? true : undefined));
    expect([heardA, heardB]).toEqual([[record.id], [record.id]]);
    offA();
    offB();
  });
});
