import type { IPoint } from 'influx';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PulsewireError } from '../../src/errors/catalog.js';
import { Spool } from '../../src/storage/spool.js';
import { SpoolDrainer, type EntryWriter } from '../../src/storage/spool-drainer.js';
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

describe('SpoolDrainer', () => {
  it('writes entries in order and removes them once confirmed', async () => {
    const written: string[] = [];
    const writer: EntryWriter = { write: async (points) => { written.push(...points.map((p) => p.timestamp as string)); } };
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
    const writer: EntryWriter = {
      write: async (points) => {
        if (down) throw new PulsewireError('PW_ERR_STORAGE_UNAVAILABLE', 'ECONNREFUSED');
        stored.push(...points.map((p) => p.fields!['value']));
      },
    };
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

  it('moves only the refused points of an entry to the dead letters, and lets the rest through', async () => {
    const stored: unknown[] = [];
    const writer: EntryWriter = {
      write: async (points) => {
        if (points.some((p) => typeof p.fields!['value'] === 'string')) {
          throw new PulsewireError('PW_ERR_STORAGE_REJECTED', 'partial write: field type conflict');
        }
        stored.push(...points.map((p) => p.fields!['value']));
      },
    };
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
