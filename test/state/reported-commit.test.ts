/**
 * `state.reported` only for a reported state that was saved: the event goes
 * out after the store committed the merged document, and a failed commit
 * emits nothing and leaves the reads at what is stored. Real StateStore on
 * real lmdb buckets; the failure is injected where the bucket's write
 * answers (a full disk or map gives the same rejected write), since lmdb
 * cannot be made to fail a write on demand.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { EventBus, type HubEvents } from '../../src/events/bus.js';
import type { CborMap } from '../../src/protocol/messages.js';
import { StateService } from '../../src/state/state-service.js';
import { StateStore, type ReportedRecord } from '../../src/state/state-store.js';
import type { Bucket } from '../../src/stores/bucket.js';
import type { LmdbBucket } from '../../src/stores/lmdb-bucket.js';
import { LMDB } from '../support/stores.js';

const DEVICE = 'thermo-1';
const reportedOf = (entries: [string, string | number][]): CborMap => new Map(entries);

/** The bucket, with a switch that makes its writes fail as a full disk would. */
function faulty<V>(bucket: Bucket<V>, failing: { on: boolean }): Bucket<V> {
  const fail = () => Promise.reject(new Error('MDB_MAP_FULL (injected)'));
  return {
    name: bucket.name,
    get: (key) => bucket.get(key),
    create: (key, value) => (failing.on ? fail() : bucket.create(key, value)),
    update: (key, value, revision) => (failing.on ? fail() : bucket.update(key, value, revision)),
    put: (key, value) => (failing.on ? fail() : bucket.put(key, value)),
    delete: (key, revision) => (failing.on ? fail() : bucket.delete(key, revision)),
    entries: (options) => bucket.entries(options),
    watch: (listener) => bucket.watch(listener),
    flush: () => bucket.flush(),
  };
}

describe('state.reported and the commit of the reported state', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  async function setUp() {
    const handle = await LMDB.open();
    cleanup.push(() => handle.close());
    const failing = { on: false };
    const { stores } = handle;
    const store = new StateStore({ desired: faulty(stores.desired, failing), reported: faulty(stores.reported, failing), desiredVersions: stores.desiredVersions });
    const bus = new EventBus();
    const warnings: string[] = [];
    const state = new StateService({ store, bus, maxMessageBytes: 65_536, logger: { warn: (_obj, msg) => warnings.push(msg) } });
    cleanup.push(() => state.close());
    // What lmdb holds at the moment of the event: committed, past the bucket's overlay.
    const committed = (): ReportedRecord | undefined => (stores.reported as LmdbBucket<ReportedRecord>).committed(DEVICE);
    const events: { event: HubEvents['state.reported']; stored: ReportedRecord | undefined }[] = [];
    bus.on('state.reported', (event) => events.push({ event, stored: committed() }));
    return { state, failing, events, warnings, committed };
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
    const { state, failing, events, warnings, committed } = await setUp();
    await state.onReported(DEVICE, reportedOf([['fw', '1.2.0']]));
    failing.on = true;
    await state.onReported(DEVICE, reportedOf([['fw', '2.0.0'], ['valve', 'open']]));
    expect(events.map((e) => e.event.reported)).toEqual([{ fw: '1.2.0' }]);
    expect(warnings).toEqual(['reported state not stored; no state.reported event']);
    expect((await state.view(DEVICE)).reported).toEqual({ fw: '1.2.0' });
    expect(committed()?.reported).toEqual({ fw: '1.2.0' });
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
    expect(await state.view(DEVICE)).toMatchObject({ desired: { interval: 30 }, version: 1 });
    expect((await state.desiredFor(DEVICE))?.version).toBe(1);
  });
});
