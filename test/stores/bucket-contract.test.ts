/**
 * The one contract every Bucket implementation keeps (src/stores/bucket.ts):
 * lmdb (one process), JetStream, and JetStream with a local mirror. The same
 * tests run against each, so the backends cannot drift; the JetStream ones
 * also run across two connections, as two hub nodes would.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, compareKeys, type Bucket, type BucketKey, type Change } from '../../src/stores/bucket.js';
import { BUCKET_KINDS, bucketFactory, type BucketFactory, type BucketKind } from '../support/nats.js';
import { waitFor } from '../support/wait.js';

type Device = { name: string; tags?: string[]; n?: number };

/** Keys that trip naive encodings: dots, a prefix of another id, '=' and non-ASCII in string keys. */
const STRING_KEYS: string[] = ['dev.1', 'dev.10', 'dev-1', 'dev_1', 'Dev', 'a.b.c', 'node 7/=x', 'nöde*>'];
const PAIR_KEYS: [string, string][] = [['dev.1', 'c2'], ['dev.1', 'c1'], ['dev.10', 'c1'], ['dev', 'c9'], ['a.b', 'z.z']];

/** Records a bucket's changes; `until` waits for one matching `match`. */
function recorder(bucket: Bucket<Device>): { changes: Change<Device>[]; stop: () => void; until: (match: (c: Change<Device>) => boolean) => Promise<void> } {
  const changes: Change<Device>[] = [];
  const stop = bucket.watch((change) => changes.push(change));
  const until = (match: (c: Change<Device>) => boolean): Promise<void> =>
    waitFor(() => changes.some(match), { timeoutMs: 20_000, what: 'watched change' });
  return { changes, stop, until };
}

const sameKey = (a: BucketKey, b: BucketKey): boolean => compareKeys(a, b) === 0;
const keysOf = async (items: AsyncIterable<{ key: BucketKey }>): Promise<BucketKey[]> => (await collect(items)).map((e) => e.key);

describe.each(BUCKET_KINDS)('Bucket contract: %s', (kind: BucketKind) => {
  let factory: BucketFactory;
  let serial = 0;
  const fresh = (): Promise<Bucket<Device>> => factory.open<Device>(`contract${++serial}`);

  beforeAll(async () => {
    factory = await bucketFactory(kind);
  });
  afterAll(async () => {
    await factory?.close();
  });

  it('gets nothing for an absent key and the value and a revision for a present one', async () => {
    const bucket = await fresh();
    expect(await bucket.get('dev.1')).toBeUndefined();
    const revision = await bucket.put('dev.1', { name: 'pump', tags: ['a', 'ü'], n: 1.5 });
    expect(revision).toBeGreaterThan(0);
    expect(await bucket.get('dev.1')).toEqual({ key: 'dev.1', value: { name: 'pump', tags: ['a', 'ü'], n: 1.5 }, revision });
    expect(await bucket.get('dev.10')).toBeUndefined();
    expect(await bucket.get(['dev.1', 'c1'])).toBeUndefined();
  });

  it('creates only when absent, and again after a delete', async () => {
    const bucket = await fresh();
    const first = await bucket.create(['dev.1', 'c1'], { name: 'first' });
    expect(first).toBeGreaterThan(0);
    expect(await bucket.create(['dev.1', 'c1'], { name: 'second' })).toBeUndefined();
    expect((await bucket.get(['dev.1', 'c1']))?.value).toEqual({ name: 'first' });
    expect(await bucket.delete(['dev.1', 'c1'])).toBe(true);
    const again = await bucket.create(['dev.1', 'c1'], { name: 'third' });
    expect(again).toBeGreaterThan(first!);
    expect(await bucket.get(['dev.1', 'c1'])).toEqual({ key: ['dev.1', 'c1'], value: { name: 'third' }, revision: again });
  });

  it('updates only from the current revision', async () => {
    const bucket = await fresh();
    const r1 = (await bucket.create('dev.1', { name: 'v1' }))!;
    const r2 = await bucket.update('dev.1', { name: 'v2' }, r1);
    expect(r2).toBeGreaterThan(r1);
    expect(await bucket.update('dev.1', { name: 'stale' }, r1)).toBeUndefined();
    expect(await bucket.update('dev.1', { name: 'never' }, 0)).toBeUndefined();
    expect(await bucket.update('absent', { name: 'none' }, r2!)).toBeUndefined();
    expect(await bucket.get('dev.1')).toEqual({ key: 'dev.1', value: { name: 'v2' }, revision: r2 });
  });

  it('lets exactly one of two concurrent updates (or creates) win', async () => {
    const bucket = await fresh();
    const r1 = (await bucket.put('dev.1', { name: 'v1' }))!;
    const results = await Promise.all([bucket.update('dev.1', { name: 'a' }, r1), bucket.update('dev.1', { name: 'b' }, r1)]);
    expect(results.filter((r) => r !== undefined)).toHaveLength(1);
    const winner = results[0] !== undefined ? 'a' : 'b';
    expect((await bucket.get('dev.1'))?.value).toEqual({ name: winner });
    const creates = await Promise.all([bucket.create('dev.2', { name: 'a' }), bucket.create('dev.2', { name: 'b' })]);
    expect(creates.filter((r) => r !== undefined)).toHaveLength(1);
  });

  it('deletes with or without a revision, and not from a stale one', async () => {
    const bucket = await fresh();
    expect(await bucket.delete('absent')).toBe(false);
    const r1 = (await bucket.put('dev.1', { name: 'v1' }))!;
    const r2 = (await bucket.put('dev.1', { name: 'v2' }))!;
    expect(await bucket.delete('dev.1', r1)).toBe(false);
    expect((await bucket.get('dev.1'))?.value).toEqual({ name: 'v2' });
    expect(await bucket.delete('dev.1', r2)).toBe(true);
    expect(await bucket.get('dev.1')).toBeUndefined();
    expect(await bucket.delete('dev.1')).toBe(false);
    await bucket.put(['dev.1', 'c1'], { name: 'cmd' });
    expect(await bucket.delete(['dev.1', 'c1'])).toBe(true);
    expect(await bucket.get(['dev.1', 'c1'])).toBeUndefined();
  });

  it('lists entries in key order: strings first, pairs grouped by their first part', async () => {
    const bucket = await fresh();
    const keys: BucketKey[] = [...PAIR_KEYS, ...STRING_KEYS];
    for (const key of keys) await bucket.put(key, { name: JSON.stringify(key) });
    const sorted = [...keys].sort(compareKeys);
    expect(await keysOf(bucket.entries())).toEqual(sorted);
    const entries = await collect(bucket.entries());
    for (const entry of entries) expect(entry.value).toEqual({ name: JSON.stringify(entry.key) });
  });

  it('filters by group, prefix and cursor', async () => {
    const bucket = await fresh();
    for (const key of [...PAIR_KEYS, ...STRING_KEYS]) await bucket.put(key, { name: 'x' });
    expect(await keysOf(bucket.entries({ group: 'dev.1' }))).toEqual([['dev.1', 'c1'], ['dev.1', 'c2']]);
    expect(await keysOf(bucket.entries({ group: 'dev.1', after: ['dev.1', 'c1'] }))).toEqual([['dev.1', 'c2']]);
    expect(await keysOf(bucket.entries({ group: 'nobody' }))).toEqual([]);
    expect(await keysOf(bucket.entries({ prefix: 'dev.' }))).toEqual(['dev.1', 'dev.10']);
    expect(await keysOf(bucket.entries({ prefix: 'dev', after: 'dev.1' }))).toEqual(['dev.10', 'dev_1']);
    expect(await keysOf(bucket.entries({ after: ['dev.1', 'c2'] }))).toEqual([['dev.10', 'c1']]);
    // Paging by cursor through everything gives everything once, in order.
    const pages: BucketKey[] = [];
    let after: BucketKey | undefined;
    for (;;) {
      const page = await collect(bucket.entries(after === undefined ? {} : { after }), 3);
      if (page.length === 0) break;
      pages.push(...page.map((e) => e.key));
      after = page[page.length - 1]!.key;
    }
    expect(pages).toEqual([...PAIR_KEYS, ...STRING_KEYS].sort(compareKeys));
  });

  it('reads its own writes as soon as they resolve', async () => {
    const bucket = await fresh();
    for (let i = 0; i < 20; i++) {
      const key = `dev.${i}`;
      const revision = await bucket.put(key, { name: `v${i}` });
      expect(await bucket.get(key)).toEqual({ key, value: { name: `v${i}` }, revision });
      const updated = await bucket.update(key, { name: `w${i}` }, revision);
      expect((await bucket.get(key))?.revision).toBe(updated);
      expect(await bucket.delete(key, updated)).toBe(true);
      expect(await bucket.get(key)).toBeUndefined();
      await bucket.put(key, { name: 'kept' });
      expect((await keysOf(bucket.entries({ prefix: key }))).some((k) => sameKey(k, key))).toBe(true);
    }
  });

  it('tells watchers about puts and deletes, until they stop watching', async () => {
    const bucket = await fresh();
    const watched = recorder(bucket);
    const revision = await bucket.put(['dev.1', 'c1'], { name: 'cmd' });
    await watched.until((c) => sameKey(c.key, ['dev.1', 'c1']) && c.revision === revision);
    expect(watched.changes.find((c) => c.revision === revision)?.value).toEqual({ name: 'cmd' });
    await bucket.delete(['dev.1', 'c1']);
    await watched.until((c) => sameKey(c.key, ['dev.1', 'c1']) && c.value === undefined);
    watched.stop();
    const count = watched.changes.length;
    await bucket.put('dev.2', { name: 'unseen' });
    const marker = recorder(bucket);
    await bucket.put('dev.3', { name: 'seen' });
    await marker.until((c) => c.key === 'dev.3');
    marker.stop();
    expect(watched.changes).toHaveLength(count);
  });

  it('settles every issued write on flush', async () => {
    const bucket = await fresh();
    const writes = Array.from({ length: 25 }, (_, i) => bucket.put(`dev.${i}`, { name: `v${i}` }));
    await bucket.flush();
    const revisions = await Promise.all(writes);
    expect(new Set(revisions).size).toBe(25);
    expect(await collect(bucket.entries({ prefix: 'dev.' }))).toHaveLength(25);
  });
});

describe.each(BUCKET_KINDS.filter((kind) => kind !== 'lmdb'))('Bucket contract across nodes: %s', (kind) => {
  let factory: BucketFactory;
  let serial = 0;
  beforeAll(async () => {
    factory = await bucketFactory(kind);
  });
  afterAll(async () => {
    await factory?.close();
  });

  it('shows each node the other one\'s writes, in its watch and its reads', async () => {
    const name = `nodes${++serial}`;
    const here = await factory.open<Device>(name);
    const there = await factory.otherNode!<Device>(name);
    const watched = recorder(here);
    const revision = (await there.create('dev.1', { name: 'from there' }))!;
    await watched.until((c) => c.key === 'dev.1' && c.revision === revision);
    await waitFor(async () => (await here.get('dev.1'))?.revision === revision, { timeoutMs: 20_000, what: 'write of the other node' });
    // Both race from one revision: JetStream lets one win across nodes too.
    const results = await Promise.all([here.update('dev.1', { name: 'here' }, revision), there.update('dev.1', { name: 'there' }, revision)]);
    expect(results.filter((r) => r !== undefined)).toHaveLength(1);
    await there.delete('dev.1');
    await watched.until((c) => c.key === 'dev.1' && c.value === undefined);
    await waitFor(async () => (await here.get('dev.1')) === undefined, { timeoutMs: 20_000, what: 'delete of the other node' });
    watched.stop();
  });
});
