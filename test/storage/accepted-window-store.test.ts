/**
 * The durable duplicate windows as a log per spool commit folded into one
 * record per device (storage/accepted-window-store.ts): what `load` answers
 * before a fold, after it, across a reopen with the log unfolded, and over a
 * data dir in the format before (one record per slot).
 */
import type { IPoint } from 'influx';
import { open as openEnv } from 'lmdb';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { foldedWindow, type FoldOptions } from '../../src/storage/accepted-window-store.js';
import { Spool } from '../../src/storage/spool.js';
import { waitFor } from '../support/wait.js';

const point = (device: string, i: number): IPoint => ({
  measurement: 'telemetry', tags: { device, name: 'n' }, fields: { value: i }, timestamp: String(1_764_000_000_000_000 + i),
});

let dir: string;
let spool: Spool | undefined;
const open = (fold?: FoldOptions) => (spool = Spool.open(dir, { maxBytes: 1 << 20, windowSize: 4, ...(fold ? { fold } : {}) }));

/** What is on disk, read through a second env of the same dir (as a process after a crash would). */
async function onDisk(): Promise<{ log: number; windows: string[]; legacy: number }> {
  const env = openEnv({ path: dir });
  try {
    const log = env.openDB<string, number>({ name: 'accepted-log', encoding: 'string' }).getKeysCount();
    const windows = [...env.openDB<Buffer, string>({ name: 'accepted-windows', encoding: 'binary' }).getKeys({})];
    const legacy = env.openDB({ name: 'accepted' }).getKeysCount();
    return { log, windows, legacy };
  } finally {
    await env.close();
  }
}

async function appendMarked(s: Spool, device: string, seqs: number[]): Promise<void> {
  await Promise.all(seqs.map((seq) => s.append(device, [point(device, seq)], { seq, fingerprint: -seq })));
}

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'pulsewire-window-'));
});
afterEach(async () => {
  await spool?.close();
  spool = undefined;
  await rm(dir, { recursive: true, force: true });
});

describe('durable duplicate windows', () => {
  it('one log record per commit, whatever its messages; folded into one record per device, and the log emptied', async () => {
    const s = open({ foldMs: 50 });
    await Promise.all([appendMarked(s, 'a', [1, 2, 3]), appendMarked(s, 'b', [7])]);
    // Known at once, before any fold.
    expect(s.accepted.load('a')).toEqual([[1, -1], [2, -2], [3, -3]]);
    await waitFor(async () => (await onDisk()).log === 0, { what: 'the log folded' });
    expect((await onDisk()).windows.sort()).toEqual(['a', 'b']);
    expect(s.accepted.load('a')).toEqual([[1, -1], [2, -2], [3, -3]]);
    expect(s.accepted.load('b')).toEqual([[7, -7]]);
    // Later marks join the folded window; the newest windowSize (4) are kept, oldest first.
    await appendMarked(s, 'a', [4, 5]);
    expect(s.accepted.load('a')).toEqual([[2, -2], [3, -3], [4, -4], [5, -5]]);
    await waitFor(async () => (await onDisk()).log === 0, { what: 'the second fold' });
    await s.close();
    const again = open();
    expect(again.accepted.load('a')).toEqual([[2, -2], [3, -3], [4, -4], [5, -5]]);
    expect(again.accepted.load('b')).toEqual([[7, -7]]);
    expect(again.accepted.load('c')).toEqual([]);
  });

  it('marks still in the log when the hub stops (as after a crash) are there at the next open, and folded then', async () => {
    const s = open({ foldMs: 60_000 });
    await appendMarked(s, 'a', [1, 2]);
    await appendMarked(s, 'a', [3]);
    await s.close();
    expect(await onDisk()).toMatchObject({ log: 2, windows: [] });
    const again = open({ foldMs: 50 });
    expect(again.accepted.load('a')).toEqual([[1, -1], [2, -2], [3, -3]]);
    await waitFor(async () => (await onDisk()).log === 0, { what: 'the log folded after the reopen' });
    expect(again.accepted.load('a')).toEqual([[1, -1], [2, -2], [3, -3]]);
  });

  it('a fold of more devices than one turn takes is spread over turns and loses none', async () => {
    const s = open({ foldMs: 50, foldChunk: 3 });
    const devices = Array.from({ length: 10 }, (_, i) => `d${i}`);
    await Promise.all(devices.map((d, i) => appendMarked(s, d, [i + 1])));
    await waitFor(async () => (await onDisk()).log === 0, { what: 'the log folded' });
    expect((await onDisk()).windows).toHaveLength(10);
    for (const [i, d] of devices.entries()) expect(s.accepted.load(d)).toEqual([[i + 1, -(i + 1)]]);
  });

  it('a message without a mark (a bare pack) logs nothing', async () => {
    const s = open({ foldMs: 60_000 });
    await s.append('a', [point('a', 1)]);
    await s.close();
    expect(await onDisk()).toMatchObject({ log: 0, windows: [] });
  });

  it('reads a data dir of the format before (a record per slot) and empties it with the first fold', async () => {
    const env = openEnv({ path: dir });
    const legacy = env.openDB<[number, number, number], string>({ name: 'accepted' });
    // Device 'a' wrapped around its 4 slots: n 4 and 5 overwrote slots 0 and 1.
    await Promise.all([
      legacy.put('a/0', [14, 40, 4]), legacy.put('a/1', [15, 50, 5]), legacy.put('a/2', [12, 20, 2]), legacy.put('a/3', [13, 30, 3]),
      legacy.put('b/0', [1, 1, 0]),
    ]);
    await env.close();
    const s = open({ foldMs: 50 });
    expect(s.accepted.load('a')).toEqual([[12, 20], [13, 30], [14, 40], [15, 50]]);
    expect(s.accepted.load('b')).toEqual([[1, 1]]);
    await waitFor(async () => (await onDisk()).legacy === 0, { what: 'the old slots emptied' });
    expect((await onDisk()).windows.sort()).toEqual(['a', 'b']);
    await appendMarked(s, 'b', [2]);
    await s.close();
    const again = open();
    expect(again.accepted.load('a')).toEqual([[12, 20], [13, 30], [14, 40], [15, 50]]);
    expect(again.accepted.load('b')).toEqual([[1, 1], [2, -2]]);
  });
});

describe('foldedWindow (a stored window and new marks, as bytes)', () => {
  const pairsOf = (bytes: Buffer): number[][] =>
    Array.from({ length: bytes.length / 8 }, (_, i) => [bytes.readUInt32LE(i * 8), bytes.readInt32LE(i * 8 + 4)]);
  const stored = (pairs: number[][]): Buffer => Buffer.concat(pairs.map(([seq, fp]) => {
    const b = Buffer.alloc(8);
    b.writeUInt32LE(seq!, 0);
    b.writeInt32LE(fp!, 4);
    return b;
  }));

  it('appends to nothing stored, and keeps only the newest when the marks alone overflow', () => {
    expect(pairsOf(foldedWindow(undefined, [1, -1, 2, -2], 4))).toEqual([[1, -1], [2, -2]]);
    expect(pairsOf(foldedWindow(undefined, [1, -1, 2, -2, 3, -3, 4, -4, 5, -5], 3))).toEqual([[3, -3], [4, -4], [5, -5]]);
  });

  it('keeps the newest stored pairs that still fit, in order, then the new ones', () => {
    const old = stored([[10, 1], [11, 2], [12, 3]]);
    expect(pairsOf(foldedWindow(old, [13, 4], 4))).toEqual([[10, 1], [11, 2], [12, 3], [13, 4]]);
    expect(pairsOf(foldedWindow(old, [13, 4, 14, 5], 4))).toEqual([[11, 2], [12, 3], [13, 4], [14, 5]]);
    expect(pairsOf(foldedWindow(old, [13, 4, 14, 5, 15, 6, 16, 7], 4))).toEqual([[13, 4], [14, 5], [15, 6], [16, 7]]);
    // The stored buffer is only read.
    expect(pairsOf(old)).toEqual([[10, 1], [11, 2], [12, 3]]);
  });
});
