/**
 * An lmdb bucket's uncommitted writes (its overlay), merged into a group's
 * listing from that group's own pending writes: the listing shows them
 * before they commit, in key order, and never another group's.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { collect } from '../../src/stores/bucket.js';
import { openEnvironment } from '../../src/stores/open-lmdb-stores.js';

describe('LmdbBucket overlay', () => {
  let dir: string;
  let env: ReturnType<typeof openEnvironment>;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'pulsewire-lmdb-bucket-'));
    env = openEnvironment(dir);
  });
  afterEach(async () => {
    await env.close();
    await rm(dir, { recursive: true, force: true });
  });
  const bucketOf = () => env.bucket<{ n: number }>('b');

  it("lists a group's uncommitted writes with its committed ones, and no other group's", async () => {
    const bucket = bucketOf();
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
