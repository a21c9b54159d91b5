/**
 * `state.reported` only for a reported state that was saved: the event goes
 * out after lmdb committed the merged document, and a failed commit emits
 * nothing and leaves the reads at what is stored. Real StateStore on a real
 * lmdb environment; the failure is injected where lmdb's put answers (a
 * full disk or map gives the same rejected put), since lmdb cannot be made
 * to fail a write on demand.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { EventBus, type HubEvents } from '../../src/events/bus.js';
import type { CborMap } from '../../src/protocol/messages.js';
import { StateService } from '../../src/state/state-service.js';
import { StateStore, type StateRecord } from '../../src/state/state-store.js';

const DEVICE = 'thermo-1';
const reportedOf = (entries: [string, string | number][]): CborMap => new Map(entries);

describe('state.reported and the commit of the reported state', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    vi.restoreAllMocks();
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  async function setUp() {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pulsewire-reported-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const root: RootDatabase = open({ path: dir });
    cleanup.push(() => root.close());
    // The store's own `state` database, with a switch that makes its puts fail as a full disk would.
    const failing = { on: false };
    let stateDb: Database<StateRecord, string> | undefined;
    const openDB = root.openDB.bind(root) as (options: { name: string }) => Database<StateRecord, string>;
    vi.spyOn(root, 'openDB').mockImplementation(((options: { name: string }) => {
      const db = openDB(options);
      if (options.name !== 'state') return db;
      const put = db.put.bind(db);
      db.put = ((key: string, value: StateRecord) => (failing.on ? Promise.reject(new Error('MDB_MAP_FULL (injected)')) : put(key, value))) as typeof db.put;
      stateDb = db;
      return db;
    }) as unknown as typeof root.openDB);
    const bus = new EventBus();
    const warnings: string[] = [];
    const store = new StateStore(root);
    const state = new StateService({ store, bus, maxMessageBytes: 65_536, logger: { warn: (_obj, msg) => warnings.push(msg) } });
    cleanup.push(() => state.close());
    const events: { event: HubEvents['state.reported']; stored: StateRecord | undefined }[] = [];
    // What lmdb holds at the moment of the event: a fresh read, not the store's cache.
    bus.on('state.reported', (event) => events.push({ event, stored: stateDb!.get(DEVICE) }));
    return { state, failing, events, warnings, stateDb: stateDb! };
  }

  it('is emitted once the merged document is committed, with that document', async () => {
    const { state, events } = await setUp();
    const done = state.onReported(DEVICE, reportedOf([['fw', '1.2.0'], ['interval', 30]]));
    expect(events).toEqual([]); // not before the commit
    await done;
    expect(events).toHaveLength(1);
    expect(events[0]!.event).toMatchObject({ deviceId: DEVICE, reported: { fw: '1.2.0', interval: 30 } });
    expect(events[0]!.stored?.reported).toEqual({ fw: '1.2.0', interval: 30 });
  });

  it('is not emitted when the commit fails, and reads stay at the stored document', async () => {
    const { state, failing, events, warnings, stateDb } = await setUp();
    await state.onReported(DEVICE, reportedOf([['fw', '1.2.0']]));
    failing.on = true;
    await state.onReported(DEVICE, reportedOf([['fw', '2.0.0'], ['valve', 'open']]));
    expect(events.map((e) => e.event.reported)).toEqual([{ fw: '1.2.0' }]);
    expect(warnings).toEqual(['reported state not stored; no state.reported event']);
    expect(state.view(DEVICE).reported).toEqual({ fw: '1.2.0' });
    expect(stateDb.get(DEVICE)?.reported).toEqual({ fw: '1.2.0' });
    // The next REPORTED merges onto what was saved, not onto the lost one.
    failing.on = false;
    await state.onReported(DEVICE, reportedOf([['interval', 60]]));
    expect(events.map((e) => e.event.reported)).toEqual([{ fw: '1.2.0' }, { fw: '1.2.0', interval: 60 }]);
  });

  it('a PATCH of desired whose commit fails is not shown either', async () => {
    const { state, failing } = await setUp();
    await state.patchDesired(DEVICE, { interval: 30 });
    failing.on = true;
    await expect(state.patchDesired(DEVICE, { interval: 5 })).rejects.toThrow(/MDB_MAP_FULL/);
    expect(state.view(DEVICE)).toMatchObject({ desired: { interval: 30 }, version: 1 });
    expect(state.desiredFor(DEVICE)?.version).toBe(1);
  });
});
