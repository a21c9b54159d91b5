/**
 * The job service on real lmdb stores with a clock the test moves: a
 * finished job outlives a restart with its counts, and is deleted once it is
 * older than the command retention. (Through a real hub this would take the
 * smallest allowed retention, a minute.)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CommandService } from '../../src/commands/command-service.js';
import { CommandStore } from '../../src/commands/command-store.js';
import { EventBus } from '../../src/events/bus.js';
import { JobService } from '../../src/jobs/job-service.js';
import { JobStore } from '../../src/jobs/job-store.js';
import { DeviceRegistry } from '../../src/registry/device-registry.js';
import { until } from '../support/wait.js';

const quiet = { info: () => {}, warn: () => {} };
const RETENTION_MS = 60_000;

describe('job retention', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterAll(async () => { for (const step of cleanup.reverse()) await step(); });

  it('keeps a finished job with its counts across a restart, and deletes it after the command retention', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pulsewire-job-retention-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const registry = await DeviceRegistry.open(path.join(dir, 'state'));
    cleanup.push(() => registry.close());
    await registry.register('keep-1');
    await registry.register('keep-2');
    // Pinned (a Saturday noon, UTC): retention is counted on this clock alone, never the wall's.
    let now = Date.UTC(2025, 10, 22, 12);
    const clock = () => now;

    const open = () => {
      const store = CommandStore.open(path.join(dir, 'commands'));
      const bus = new EventBus();
      const commands = new CommandService({
        store, bus, logger: quiet, now: clock, points: { append: async () => {} },
        limits: { commandQueueMax: 10, commandTtlMs: 3_600_000, commandTimeoutMs: 30_000, commandRetentionMs: RETENTION_MS, maxMessageBytes: 65_536 },
      });
      commands.start();
      const jobs = new JobService({ store: new JobStore(store.root), commands, registry, bus, logger: quiet, retentionMs: RETENTION_MS, isOnline: () => false, now: clock });
      jobs.start();
      return { jobs, async close() { await jobs.close(); await commands.close(); await store.close(); } };
    };

    const first = open();
    const created = await first.jobs.create({ command: { name: 'reboot' }, target: { prefix: 'keep-' }, rolloutPerSecond: 1000 });
    await until(() => (first.jobs.get(created.id).dispatched === 2 ? true : undefined));
    const cancelled = await first.jobs.cancel(created.id);
    expect(cancelled.status).toBe('cancelled');
    await first.close();

    now += RETENTION_MS / 2;
    const second = open();
    expect(second.jobs.get(created.id)).toMatchObject({ status: 'cancelled', dispatched: 2, counts: { cancelled: 2 } });
    expect(second.jobs.commandsOf(created.id, 'cancelled', 10)).toHaveLength(2);
    await second.close();

    now += RETENTION_MS;
    const third = open();
    expect(() => third.jobs.get(created.id)).toThrow(/no such job/);
    expect(third.jobs.list(undefined, 10)).toEqual([]);
    await third.close();
    // Deleted from the store, not only forgotten.
    const store = CommandStore.open(path.join(dir, 'commands'));
    const jobStore = new JobStore(store.root);
    expect([...jobStore.jobs()]).toEqual([]);
    expect([...jobStore.dispatches(created.id)]).toEqual([]);
    expect(jobStore.targets(created.id)).toEqual([]);
    await store.close();
  });
});
