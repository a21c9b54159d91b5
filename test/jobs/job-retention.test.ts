/**
 * The job service on real stores with a clock the test moves: a finished job
 * outlives a restart with its counts, and is deleted once it is older than
 * the command retention. (Through a real hub this would take the smallest
 * allowed retention, a minute.)
 */
import { afterAll, describe, expect, it } from 'vitest';
import { JobStore } from '../../src/jobs/job-store.js';
import { startServices } from '../support/services.js';
import { LMDB } from '../support/stores.js';
import { until } from '../support/wait.js';

const RETENTION_MS = 60_000;

describe('job retention', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterAll(async () => { for (const step of cleanup.reverse()) await step(); });

  it('keeps a finished job with its counts across a restart, and deletes it after the command retention', async () => {
    const handle = await LMDB.open();
    cleanup.push(() => handle.close());
    // Pinned (a Saturday noon, UTC): retention is counted on this clock alone, never the wall's.
    let now = Date.UTC(2025, 10, 22, 12);
    const clock = () => now;
    const open = async () => {
      const hub = await startServices(handle.stores, { now: clock, limits: { commandQueueMax: 10, commandRetentionMs: RETENTION_MS } });
      return { jobs: hub.jobs, registry: hub.registry, close: () => hub.stop() };
    };

    const first = await open();
    await first.registry.register('keep-1');
    await first.registry.register('keep-2');
    const created = await first.jobs.create({ command: { name: 'reboot' }, target: { prefix: 'keep-' }, rolloutPerSecond: 1000 });
    await until(async () => ((await first.jobs.get(created.id)).dispatched === 2 ? true : undefined));
    const cancelled = await first.jobs.cancel(created.id);
    expect(cancelled.status).toBe('cancelled');
    // The cancelled commands are counted (and the counts stored) before the restart.
    await until(async () => ((await first.jobs.get(created.id)).counts.cancelled === 2 ? true : undefined));
    await first.close();
    await handle.reopen();

    now += RETENTION_MS / 2;
    const second = await open();
    expect(await second.jobs.get(created.id)).toMatchObject({ status: 'cancelled', dispatched: 2, counts: { cancelled: 2 } });
    expect(await second.jobs.commandsOf(created.id, 'cancelled', 10)).toHaveLength(2);
    await second.close();
    await handle.reopen();

    now += RETENTION_MS;
    const third = await open();
    // Pruned by the runner when it takes the jobs lease (at start with one process).
    await until(async () => ((await third.jobs.list(undefined, 10)).length === 0 ? true : undefined));
    await expect(third.jobs.get(created.id)).rejects.toThrow(/no such job/);
    await third.close();
    // Deleted from the store, not only forgotten.
    const jobStore = new JobStore(handle.stores);
    expect(await jobStore.jobs()).toEqual([]);
    expect(await jobStore.dispatches(created.id)).toEqual([]);
    expect(await jobStore.targets(created.id)).toEqual([]);
  });
});
