/**
 * What an lmdb bucket keeps in memory does not grow with history: revisions
 * are remembered for the keys touched lately only (KeyRevisions), and a
 * revision let go makes an update at it fail as a conflict would, never
 * succeed wrongly. Uncommitted writes are merged into a group's listing
 * from that group's own pending writes.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { collect } from '../../src/stores/bucket.js';
import { KeyRevisions, LmdbBucket } from '../../src/stores/lmdb-bucket.js';

describe('KeyRevisions', () => {
  it('holds at most two generations, keeps a key in use, and forgets one left alone', () => {
    const revisions = new KeyRevisions(4);
    revisions.set('kept', 1);
    for (let i = 0; i < 20; i++) {
      revisions.set(`k${i}`, 100 + i);
      expect(revisions.get('kept')).toBe(1);
      expect(revisions.size).toBeLessThanOrEqual(8);
    }
    expect(revisions.get('k0')).toBeUndefined();
    expect(revisions.get('k19')).toBe(119);
    revisions.delete('kept');
    expect(revisions.get('kept')).toBeUndefined();
  });
});

describe('LmdbBucket memory', () => {
  let dir: string;
  let root: RootDatabase;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'pulsewire-lmdb-bucket-'));
    root = open({ path: dir, maxDbs: 4 });
  });
  afterEach(async () => {
    await root.close();
    await rm(dir, { recursive: true, force: true });
  });
  const bucketOf = (perGeneration: number) =>
    new LmdbBucket<{ n: number }>('b', root.openDB({ name: 'b' }) as unknown as Database<{ n: number }, string | [string, string]>, { revisionsPerGeneration: perGeneration });

  it('holds revisions for a bounded number of keys however many it has seen', async () => {
    const bucket = bucketOf(16);
    for (let i = 0; i < 500; i++) await bucket.put(['d', `k${String(i).padStart(3, '0')}`], { n: i });
    for (const entry of await collect(bucket.entries({ group: 'd' }))) expect(entry.revision).toBeGreaterThan(0);
    expect(bucket.revisionsHeld).toBeLessThanOrEqual(32);
    expect(await collect(bucket.entries({ group: 'd' }))).toHaveLength(500);
  });

  it('an update at a revision read just before succeeds; at one let go since, it fails, and a fresh read succeeds', async () => {
    const bucket = bucketOf(8);
    await bucket.put('target', { n: 0 });
    const fresh = (await bucket.get('target'))!;
    expect(await bucket.update('target', { n: 1 }, fresh.revision)).toBeDefined();
    const old = (await bucket.get('target'))!;
    for (let i = 0; i < 40; i++) await bucket.put(`other-${i}`, { n: i });
    expect(await bucket.update('target', { n: 2 }, old.revision)).toBeUndefined();
    expect((await bucket.get('target'))!.value).toEqual({ n: 1 });
    const again = (await bucket.get('target'))!;
    expect(again.revision).not.toBe(old.revision);
    expect(await bucket.update('target', { n: 2 }, again.revision)).toBeDefined();
    expect((await bucket.get('target'))!.value).toEqual({ n: 2 });
  });

  it("lists a group's uncommitted writes with its committed ones, and no other group's", async () => {
    const bucket = bucketOf(1024);
    await bucket.put(['a', '2'], { n: 2 });
    const writes = [bucket.put(['a', '1'], { n: 1 }), bucket.put(['a', '3'], { n: 3 }), bucket.put(['b', '1'], { n: 9 }), bucket.delete(['a', '2'])];
    // Read before those commit: the overlay answers.
    expect((await collect(bucket.entries({ group: 'a' }))).map((e) => [e.key, e.value.n])).toEqual([[['a', '1'], 1], [['a', '3'], 3]]);
    expect((await collect(bucket.entries({ group: 'b' }))).map((e) => e.value.n)).toEqual([9]);
    await Promise.all(writes);
    expect((await collect(bucket.entries({ group: 'a' }))).map((e) => e.value.n)).toEqual([1, 3]);
    expect((await collect(bucket.entries())).map((e) => e.value.n)).toEqual([1, 3, 9]);
  });
});
