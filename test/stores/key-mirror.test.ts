/**
 * The mirror's race rules (src/stores/key-mirror.ts), driven by hand: the
 * feed and this node's acknowledgements arrive in either order, and a record
 * only ever moves forward.
 */
import { describe, expect, it } from 'vitest';
import { compareKeys, type BucketKey } from '../../src/stores/bucket.js';
import { KeyMirror } from '../../src/stores/key-mirror.js';

const json = (name: string): string => JSON.stringify({ name });
const nameOf = (mirror: KeyMirror<{ name: string }>, key: BucketKey): string | undefined => mirror.get(key)?.value.name;

describe('KeyMirror', () => {
  it('shows an acknowledged write before the feed delivers it, and ignores the feed\'s older news', () => {
    const mirror = new KeyMirror<{ name: string }>();
    mirror.applyFeed('d', json('v1'), 1);
    mirror.applyWrite('d', json('v3'), 3, 1);
    expect(mirror.get('d')).toEqual({ key: 'd', value: { name: 'v3' }, revision: 3 });
    expect(mirror.applyFeed('d', json('v2 from another node'), 2)).toBe(false);
    mirror.applyFeed('d', json('v3'), 3);
    expect(nameOf(mirror, 'd')).toBe('v3');
  });

  it('does not bring back a key from an acknowledgement that arrives after the feed delivered its delete', () => {
    const mirror = new KeyMirror<{ name: string }>();
    mirror.applyFeed('d', json('v5'), 5);
    mirror.applyFeed('d', undefined, 6); // deleted by another node
    mirror.applyWrite('d', json('v5'), 5, 6); // our put at 5, acknowledged late
    expect(mirror.get('d')).toBeUndefined();
    expect(mirror.size).toBe(0);
  });

  it('hides a deleted value at once, also from a feed that has not delivered that value yet', () => {
    const mirror = new KeyMirror<{ name: string }>();
    mirror.applyWrite('d', json('v4'), 4, 0);
    mirror.applyDelete('d', 4, 0);
    expect(mirror.get('d')).toBeUndefined();
    mirror.applyFeed('d', json('v4'), 4); // the feed catching up with the deleted value
    expect(mirror.get('d')).toBeUndefined();
    mirror.applyFeed('d', undefined, 5); // its delete marker
    mirror.applyFeed('d', json('v7'), 7); // created again
    expect(nameOf(mirror, 'd')).toBe('v7');
    // A delete acknowledged after the feed moved past it changes nothing.
    mirror.applyDelete('d', 4, 7);
    expect(nameOf(mirror, 'd')).toBe('v7');
  });

  it('lists in key order with group, prefix and cursor, and hands out copies', () => {
    const mirror = new KeyMirror<{ name: string }>();
    const keys: BucketKey[] = [['dev.1', 'c2'], 'dev.10', ['dev', 'c1'], 'dev.1', ['dev.1', 'c1'], 'a', ['dev.10', 'c1']];
    keys.forEach((key, i) => mirror.applyFeed(key, json(String(i)), i + 1));
    const listed = (options = {}): BucketKey[] => [...mirror.entries(options)].map((e) => e.key);
    expect(listed()).toEqual([...keys].sort(compareKeys));
    expect(listed({ group: 'dev.1' })).toEqual([['dev.1', 'c1'], ['dev.1', 'c2']]);
    expect(listed({ prefix: 'dev.' })).toEqual(['dev.1', 'dev.10']);
    expect(listed({ prefix: 'dev.', after: 'dev.1' })).toEqual(['dev.10']);
    expect(listed({ after: ['dev.1', 'c2'] })).toEqual([['dev.10', 'c1']]);
    expect(listed({ group: 'dev.1', after: 'zzz' })).toEqual([['dev.1', 'c1'], ['dev.1', 'c2']]);
    mirror.get('a')!.value.name = 'changed by a caller';
    expect(nameOf(mirror, 'a')).toBe('5');
  });

  it('keeps a listing in order while keys come and go under it', () => {
    const mirror = new KeyMirror<{ name: string }>();
    for (let i = 0; i < 10; i++) mirror.applyFeed(`k${i}`, json(String(i)), i + 1);
    const seen: BucketKey[] = [];
    let revision = 100;
    for (const entry of mirror.entries()) {
      seen.push(entry.key);
      if (entry.key === 'k2') {
        mirror.applyFeed('k0', undefined, ++revision); // behind the cursor
        mirror.applyFeed('k3', undefined, ++revision); // just ahead of it
        mirror.applyFeed('k55', json('new'), ++revision); // ahead, new
      }
    }
    expect(seen).toEqual(['k0', 'k1', 'k2', 'k4', 'k5', 'k55', 'k6', 'k7', 'k8', 'k9']);
  });
});
