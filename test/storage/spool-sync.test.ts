/**
 * PULSEWIRE_SPOOL_SYNC: with `commit` an append (so ACK 0) waits for lmdb's
 * commit only; with `flush` also for the fsync of that commit. The spool
 * takes the flush it waits for as a seam, so the test can hold it and see the
 * append wait; the real one (lmdb's `flushed`) is used by the hub, which is
 * started with the variable and must still store and acknowledge.
 */
import { Encoder } from 'cbor-x';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Spool } from '../../src/storage/spool.js';
import { TestDevice } from '../support/device-client.js';
import { startHub } from '../support/hub.js';
import { sleep } from '../support/wait.js';

const line = (i: number) => `telemetry,device=d,name=n value=${i} ${1_764_000_000_000_000 + i}`;

let dir: string;
let spool: Spool | undefined;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'pulsewire-spool-sync-'));
});
afterEach(async () => {
  await spool?.close();
  spool = undefined;
  await rm(dir, { recursive: true, force: true });
});

/** A flush the test releases; counts how often the spool asked for one. */
function heldFlush(): { flushed: () => Promise<void>; release: () => void; asked: () => number } {
  let release!: () => void;
  const held = new Promise<void>((resolve) => { release = resolve; });
  let asked = 0;
  return { flushed: () => { asked++; return held; }, release, asked: () => asked };
}

describe('PULSEWIRE_SPOOL_SYNC', () => {
  it('flush: an append resolves only after the flush of its commit, though the drainer may already take it', async () => {
    const flush = heldFlush();
    spool = Spool.open(dir, { maxBytes: 1 << 20, windowSize: 4, sync: 'flush', flushed: flush.flushed });
    let acked = false;
    const append = spool.appendLines('d', line(1), 1).then(() => { acked = true; });
    const committed = new Promise<void>((resolve) => spool!.onCommitted(resolve));
    await committed;
    await sleep(50);
    expect(flush.asked()).toBe(1);
    expect(acked).toBe(false);
    expect(spool.peek(10).map((e) => e.lines)).toEqual([line(1)]);
    flush.release();
    await append;
    expect(acked).toBe(true);
  });

  it('commit (the default): an append resolves at the commit and never waits for a flush', async () => {
    const flush = heldFlush();
    spool = Spool.open(dir, { maxBytes: 1 << 20, windowSize: 4, flushed: flush.flushed });
    expect(spool.sync).toBe('commit');
    await spool.appendLines('d', line(1), 1);
    expect(flush.asked()).toBe(0);
  });

  it('flush with lmdb\'s own flush: appends resolve and what they stored is there after a reopen', async () => {
    spool = Spool.open(dir, { maxBytes: 1 << 20, windowSize: 4, sync: 'flush' });
    await Promise.all([1, 2, 3].map((i) => spool!.appendLines('d', line(i), 1, { seq: i, fingerprint: i })));
    await spool.appendLines('d', line(4), 1);
    await spool.close();
    spool = Spool.open(dir, { maxBytes: 1 << 20, windowSize: 4 });
    expect(spool.peek(10).map((e) => e.lines)).toEqual([1, 2, 3, 4].map(line));
    expect(spool.accepted.load('d')).toEqual([[1, 1], [2, 2], [3, 3]]);
  });

  it('a hub started with PULSEWIRE_SPOOL_SYNC=flush spools with flush, acknowledges and stores', async () => {
    const hub = await startHub({ PULSEWIRE_SPOOL_SYNC: 'flush' });
    try {
      expect(hub.config.spoolSync).toBe('flush');
      expect(hub.app.spool.sync).toBe('flush');
      const device = await TestDevice.connect(hub.deviceUrl, { id: 'flush-1' });
      const now = Math.floor(Date.now() / 1000);
      device.send(new Encoder({ mapsAsObjects: false, useRecords: false }).encode([1, 5, [new Map<number, unknown>([[0, 'x'], [2, 1.5], [6, now]])]]));
      expect(await device.next()).toEqual({ type: 2, seq: 5 });
      await device.close();
      const rows = await hub.db.query(`SELECT "value" FROM "telemetry" WHERE "device" = 'flush-1'`);
      expect(rows.map((r) => r['value'])).toEqual([1.5]);
    } finally {
      await hub.close();
    }
  });
});
