import type { IPoint } from 'influx';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PulsewireError } from '../../src/errors/catalog.js';
import { Spool, type SpoolEntry } from '../../src/storage/spool.js';
import { SpoolDrainer, writeEachOf, type EntryWriter } from '../../src/storage/spool-drainer.js';
import { waitFor } from '../support/wait.js';

const point = (device: string, i: number, value: number | string = i): IPoint => ({
  measurement: 'telemetry', tags: { device, name: 'n' }, fields: { value }, timestamp: String(1_764_000_000_000_000 + i),
});

let dir: string;
let spool: Spool;
const open = (maxBytes = 1 << 20) => Spool.open(dir, { maxBytes, windowSize: 4 });

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'pulsewire-spool-'));
  spool = open();
});
afterEach(async () => {
  await spool.close();
  await rm(dir, { recursive: true, force: true });
});

describe('Spool', () => {
  it('appends in order, hands out batches oldest first, and forgets what was removed', async () => {
    await Promise.all([1, 2, 3].map((i) => spool.append('d', [point('d', i), point('d', i + 100)])));
    expect(spool.stats).toMatchObject({ entries: 3, points: 6 });
    const batch = spool.peek(4);
    expect(batch.map((e) => e.points[0]!.timestamp)).toEqual([point('d', 1).timestamp, point('d', 2).timestamp]);
    expect(batch[0]!.points[1]).toEqual(point('d', 101));
    await spool.remove(batch);
    expect(spool.peek(100).map((e) => e.points[0]!.fields!['value'])).toEqual([3]);
    expect(spool.stats).toMatchObject({ entries: 1, points: 2 });
    // A batch always has at least one entry, however large.
    expect(spool.peek(1)).toHaveLength(1);
  });

  it('refuses appends past the bound with PW_ERR_SPOOL_FULL until it drains below 90%', async () => {
    await spool.close();
    spool = open(2048);
    const big = Array.from({ length: 8 }, (_, i) => point('d', i));
    let refused: unknown;
    for (let i = 0; i < 50 && !refused; i++) await spool.append('d', big).catch((e: unknown) => { refused = e; });
    expect(refused).toBeInstanceOf(PulsewireError);
    expect((refused as PulsewireError).code).toBe('PW_ERR_SPOOL_FULL');
    expect((refused as PulsewireError).spec.ack).toBe(4);
    expect(spool.full).toBe(true);
    expect(spool.stats.bytes).toBeLessThanOrEqual(2048);
    // Removing the oldest entry brings it below the 90% low-water mark: room again.
    await spool.remove(spool.peek(1));
    expect(spool.full).toBe(false);
    await spool.append('d', [point('d', 999)]);
  });

  it('keeps entries, device windows and dead letters across a reopen', async () => {
    await spool.append('a', [point('a', 1)], { seq: 7, fingerprint: -5 });
    await spool.append('a', [point('a', 2)], { seq: 8, fingerprint: 6 });
    for (let s = 0; s < 5; s++) await spool.append('b', [point('b', s)], { seq: s, fingerprint: s * 10 });
    await spool.deadLetter(spool.peek(1)[0]!, [point('a', 1)], 'field type conflict');
    await spool.close();
    spool = open();
    expect(spool.stats).toMatchObject({ entries: 6, points: 6 });
    expect(spool.peek(1)[0]!.points[0]).toEqual(point('a', 2));
    expect(spool.accepted.load('a')).toEqual([[7, -5], [8, 6]]);
    // The window keeps the newest `windowSize` (4), oldest first.
    expect(spool.accepted.load('b')).toEqual([[1, 10], [2, 20], [3, 30], [4, 40]]);
    expect(spool.accepted.load('c')).toEqual([]);
    const letters = spool.deadLetters.page(10);
    expect(letters.deadLetters).toMatchObject([{ deviceId: 'a', reason: 'field type conflict', points: [point('a', 1)] }]);
  });
});

describe('Spool group commit', () => {
  it('commits the appends of one event turn as one record, and frees it only when all its entries are gone', async () => {
    await Promise.all([1, 2, 3].map((i) => spool.append('d', [point('d', i)], { seq: i, fingerprint: i })));
    await spool.append('d', [point('d', 4)]);
    const entries = spool.peek(100);
    expect(entries.map((e) => [e.record, e.index])).toEqual([[1, 0], [1, 1], [1, 2], [2, 0]]);
    expect(spool.accepted.load('d')).toEqual([[1, 1], [2, 2], [3, 3]]);
    const bytesBefore = spool.stats.bytes;
    await spool.remove(entries.slice(0, 2));
    // The record still holds entry 3: nothing freed on disk, but the removed two are not handed out again.
    expect(spool.stats).toMatchObject({ entries: 2, points: 2, bytes: bytesBefore });
    expect(spool.peek(100).map((e) => e.points[0]!.fields!['value'])).toEqual([3, 4]);
    await spool.remove(spool.peek(1));
    expect(spool.stats.bytes).toBeLessThan(bytesBefore);
    await spool.remove(spool.peek(100));
    expect(spool.stats).toMatchObject({ entries: 0, points: 0, bytes: 0 });
  });

  it('hands out the same entries whether a record is kept in memory after its commit or read back from disk', async () => {
    await spool.close();
    spool = Spool.open(dir, { maxBytes: 1 << 20, windowSize: 4, cachedPoints: 3 });
    // The first turn's record (3 points) fits the cache; the second's does not and is read back from disk.
    await Promise.all([1, 2, 3].map((i) => spool.append('a', [point('a', i)])));
    await Promise.all([4, 5].map((i) => spool.append('b', [point('b', i, `v${i}`)])));
    const entries = spool.peek(100);
    expect(entries.map((e) => [e.deviceId, e.record, e.index, e.points[0]!.fields!['value']])).toEqual([
      ['a', 1, 0, 1], ['a', 1, 1, 2], ['a', 1, 2, 3], ['b', 2, 0, 'v4'], ['b', 2, 1, 'v5'],
    ]);
    expect(entries[3]!.points[0]).toEqual(point('b', 4, 'v4'));
    await spool.remove(entries);
    expect(spool.stats).toMatchObject({ entries: 0, points: 0, bytes: 0 });
  });

  it('hands out each entry once when its record is readable before its commit is reported', async () => {
    // lmdb makes a commit readable before its put promises resolve (overlappingSync: the flush comes
    // after); under load that gap outlasted a whole InfluxDB write. Holding back the duplicate-window log put,
    // which the record's commit waits for too, opens the gap on purpose.
    let release!: () => void;
    const held = new Promise<void>((resolve) => { release = resolve; });
    const log = spool.accepted.log.bind(spool.accepted);
    spool.accepted.log = (marks) => {
      const logged = log(marks);
      return { key: logged.key, written: held.then(() => logged.written) };
    };
    const { open: openEnv } = await import('lmdb');
    const env = openEnv({ path: dir });
    const onDisk = env.openDB<string, number>({ name: 'entries', encoding: 'string' });
    const committed = Promise.all([1, 2].map((i) => spool.append('d', [point('d', i)], { seq: i, fingerprint: i })));
    await waitFor(() => onDisk.getKeysCount() === 1, { what: 'record readable on disk' });
    // What a drainer round does in the gap: take what peek offers, deliver it, remove it.
    const early = spool.peek(1);
    await spool.remove(early);
    release();
    await committed;
    const later = spool.peek(100);
    const value = (e: SpoolEntry) => e.points[0]!.fields!['value'];
    expect([...early, ...later].map(value)).toEqual([1, 2]);
    expect(spool.stats).toMatchObject({ entries: later.length, points: later.length });
    await spool.remove(later);
    expect(spool.stats).toMatchObject({ entries: 0, points: 0, bytes: 0 });
    await env.close();
  });

  it('while one record is being committed, the turns that end meanwhile share the next record', async () => {
    // Hold the first record's commit (its duplicate-window log put, which the record's commit waits for).
    let release!: () => void;
    const held = new Promise<void>((resolve) => { release = resolve; });
    const log = spool.accepted.log.bind(spool.accepted);
    spool.accepted.log = (marks) => {
      const logged = log(marks);
      return marks.pairs[0] === 1 ? { key: logged.key, written: held.then(() => logged.written) } : logged;
    };
    const first = spool.append('d', [point('d', 1)], { seq: 1, fingerprint: 1 });
    const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
    await nextTurn();
    const later: Promise<void>[] = [];
    for (const i of [2, 3, 4]) {
      later.push(spool.append('d', [point('d', i)], { seq: i, fingerprint: i }));
      await nextTurn();
    }
    release();
    await Promise.all([first, ...later]);
    expect(spool.peek(100).map((e) => [e.record, e.index, e.points[0]!.fields!['value']])).toEqual([[1, 0, 1], [2, 0, 2], [2, 1, 3], [2, 2, 4]]);
    expect(spool.accepted.load('d')).toEqual([[1, 1], [2, 2], [3, 3], [4, 4]]);
  });

  it('cuts a record at 2,000 points even within one turn', async () => {
    const many = Array.from({ length: 1500 }, (_, i) => point('d', i));
    await Promise.all([spool.append('a', many), spool.append('b', many), spool.append('c', [point('c', 1)])]);
    expect(spool.peek(10_000).map((e) => [e.deviceId, e.record])).toEqual([['a', 1], ['b', 1], ['c', 2]]);
  });

  it('counts bytes as the records on disk take them, across a reopen', async () => {
    await Promise.all([1, 2].map((i) => spool.append('d', [point('d', i, 'é'.repeat(i))])));
    await spool.append('d', [point('d', 3)]);
    const counted = spool.stats.bytes;
    await spool.close();
    spool = open();
    expect(spool.stats).toMatchObject({ entries: 3, points: 3, bytes: counted });
  });

  it('reads records written before group commit, one message each', async () => {
    await spool.close();
    const { open: openEnv } = await import('lmdb');
    const env = openEnv({ path: dir });
    const legacy = env.openDB<string, number>({ name: 'entries', encoding: 'string' });
    await legacy.put(1, JSON.stringify({ d: 'old', p: [point('old', 1)], at: 1_764_000_000_000 }));
    await legacy.put(2, JSON.stringify({ d: 'old', p: [point('old', 2), point('old', 3)], at: 1_764_000_000_001 }));
    await env.close();
    spool = open();
    expect(spool.stats).toMatchObject({ entries: 2, points: 3 });
    await spool.append('new', [point('new', 4)]);
    const entries = spool.peek(100);
    expect(entries.map((e) => [e.deviceId, e.record, e.points.length])).toEqual([['old', 1, 1], ['old', 2, 2], ['new', 3, 1]]);
    await spool.remove(entries);
    expect(spool.stats).toMatchObject({ entries: 0, points: 0, bytes: 0 });
  });
});

describe('SpoolDrainer', () => {
  it('keeps two rounds in flight, never hands an entry out twice, and removes each round as it is confirmed', async () => {
    const held: { values: unknown[]; release: () => void }[] = [];
    const writer: EntryWriter = writeEachOf(
      (points) => new Promise<void>((release) => held.push({ values: points.map((p) => p.fields!['value']), release })),
    );
    for (let i = 0; i < 6; i++) await spool.append('d', [point('d', i)]);
    const drainer = new SpoolDrainer(spool, writer, { batchPoints: 2 });
    drainer.start();
    await waitFor(() => held.length === 4);
    await new Promise((r) => setTimeout(r, 50));
    // Rounds 1 and 2 are out (entries 0..3); a third waits for a free place.
    expect(held.map((h) => h.values[0])).toEqual([0, 1, 2, 3]);
    held[2]!.release();
    held[3]!.release();
    await waitFor(() => held.length === 6);
    expect(held.map((h) => h.values[0])).toEqual([0, 1, 2, 3, 4, 5]);
    expect(spool.stats.entries).toBe(4);
    for (const h of held) h.release();
    await waitFor(() => spool.stats.entries === 0);
    await drainer.stop(100);
    expect(drainer.stats.drainedPoints).toBe(6);
  });

  it('writes entries in order and removes them once confirmed', async () => {
    const written: string[] = [];
    const writer: EntryWriter = writeEachOf(async (points) => { written.push(...points.map((p) => p.timestamp as string)); });
    const drainer = new SpoolDrainer(spool, writer, { batchPoints: 3 });
    drainer.start();
    for (let i = 0; i < 20; i++) await spool.append('d', [point('d', i)]);
    await waitFor(() => spool.stats.entries === 0);
    await drainer.stop(100);
    expect(written).toEqual(Array.from({ length: 20 }, (_, i) => point('d', i).timestamp));
    expect(drainer.stats.drainedPoints).toBe(20);
  });

  it('backs off while storage is unavailable, keeps everything, and delivers once it is back', async () => {
    let down = true;
    const stored: unknown[] = [];
    const writer: EntryWriter = writeEachOf(async (points) => {
      if (down) throw new PulsewireError('PW_ERR_STORAGE_UNAVAILABLE', 'ECONNREFUSED');
      stored.push(...points.map((p) => p.fields!['value']));
    });
    const drainer = new SpoolDrainer(spool, writer, { batchPoints: 100, backoffBaseMs: 5, backoffCapMs: 20 });
    drainer.start();
    for (let i = 0; i < 5; i++) await spool.append('d', [point('d', i)]);
    await waitFor(() => drainer.stats.retries >= 3);
    expect(spool.stats.entries).toBe(5);
    expect(drainer.stats.backingOff).toBe(true);
    down = false;
    await waitFor(() => spool.stats.entries === 0);
    expect(stored).toEqual([0, 1, 2, 3, 4]);
    await drainer.stop(100);
  });

  it('stop(bound) returns while a write never settles, and leaves its entries in the spool', async () => {
    // A hung InfluxDB at shutdown: without the bound, stop() would wait for ever (the test's timeout).
    let writing = false;
    const writer: EntryWriter = writeEachOf(() => { writing = true; return new Promise<void>(() => {}); });
    await spool.append('d', [point('d', 1)]);
    const drainer = new SpoolDrainer(spool, writer, { batchPoints: 10 });
    drainer.start();
    await waitFor(() => writing, { what: 'the write that hangs' });
    await drainer.stop(50);
    expect(spool.stats).toMatchObject({ entries: 1, points: 1 });
    expect(drainer.stats.drainedPoints).toBe(0);
  });

  it('moves only the refused points of an entry to the dead letters, and lets the rest through', async () => {
    const stored: unknown[] = [];
    const writer: EntryWriter = writeEachOf(async (points) => {
      if (points.some((p) => typeof p.fields!['value'] === 'string')) {
        throw new PulsewireError('PW_ERR_STORAGE_REJECTED', 'partial write: field type conflict');
      }
      stored.push(...points.map((p) => p.fields!['value']));
    });
    const drainer = new SpoolDrainer(spool, writer, { batchPoints: 100 });
    await spool.append('d', [point('d', 1)]);
    await spool.append('d', [point('d', 2), point('d', 3, 'oops'), point('d', 4)]);
    await spool.append('d', [point('d', 5)]);
    drainer.start();
    await waitFor(() => spool.stats.entries === 0);
    await drainer.stop(100);
    expect(stored.sort()).toEqual([1, 2, 4, 5]);
    const { deadLetters } = spool.deadLetters.page(10);
    expect(deadLetters).toHaveLength(1);
    expect(deadLetters[0]).toMatchObject({ deviceId: 'd', reason: 'partial write: field type conflict', points: [point('d', 3, 'oops')] });
    expect(drainer.stats.deadLetterPoints).toBe(1);
  });
});
