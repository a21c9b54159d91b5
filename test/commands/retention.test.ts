/**
 * PULSEWIRE_COMMAND_RETENTION_MS on a real hub: a finished command is
 * deleted once its completedAt is older than the retention, by the hourly
 * prune and by the prune at start; an unfinished one (queued, sent,
 * received) is kept however old it is. Seen through the operator API over
 * HTTP, with the commands finished by a real device over WebSocket.
 *
 * Nobody waits a minute (the smallest retention) or an hour (the prune's
 * period): the command service's clock is one the test moves, and the hourly
 * prune is scheduled on a scheduler the test runs by hand.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PRUNE_EVERY_MS } from '../../src/commands/deadlines.js';
import type { Scheduler } from '../../src/commands/deadline.js';
import { encodeResult } from '../../src/protocol/encode.js';
import { nextCommand } from '../support/commands.js';
import { TestDevice } from '../support/device-client.js';
import { startHub, type TestHub } from '../support/hub.js';
import { freshDatabase, type FreshDatabase } from '../support/influx.js';
import { waitFor } from '../support/wait.js';

const RETENTION_MS = 60_000;

/** Holds what the service schedules; `fire()` runs it now, as if the hour had passed. */
class ManualScheduler implements Scheduler {
  readonly pending = new Map<NodeJS.Timeout, { fn: () => void; ms: number }>();

  setTimeout(fn: () => void, ms: number): NodeJS.Timeout {
    const timer = { unref: () => timer } as unknown as NodeJS.Timeout;
    this.pending.set(timer, { fn, ms });
    return timer;
  }

  clearTimeout(timer: NodeJS.Timeout | undefined): void {
    if (timer) this.pending.delete(timer);
  }

  /** The delays of what is scheduled now. */
  get delays(): number[] {
    return [...this.pending.values()].map((entry) => entry.ms);
  }

  fire(): void {
    const due = [...this.pending.values()];
    this.pending.clear();
    for (const { fn } of due) fn();
  }
}

describe('command retention (PULSEWIRE_COMMAND_RETENTION_MS)', () => {
  const t0 = Date.now();
  let nowMs = t0;
  const clock = () => nowMs;
  let scheduler: ManualScheduler;
  let dataDir: string;
  let database: FreshDatabase;
  let hub: TestHub;
  let device: TestDevice | undefined;

  const start = async () => {
    scheduler = new ManualScheduler();
    hub = await startHub({ PULSEWIRE_COMMAND_RETENTION_MS: String(RETENTION_MS) }, { dataDir, database, commands: { now: clock, pruneScheduler: scheduler } });
  };
  const create = async (deviceId: string, body: object): Promise<string> => {
    const res = await hub.api('POST', `/v1/devices/${deviceId}/commands`, body);
    expect(res.status).toBe(202);
    return res.body.id as string;
  };
  const statusOf = async (deviceId: string, id: string): Promise<string | number> => {
    const res = await hub.api('GET', `/v1/devices/${deviceId}/commands/${id}`);
    return res.status === 200 ? res.body.status : res.status;
  };
  const listed = async (deviceId: string): Promise<[string, string][]> =>
    (await hub.api('GET', `/v1/devices/${deviceId}/commands`)).body.commands.map((c: { id: string; status: string }) => [c.id, c.status]);
  /**
   * A prune issues its deletions when it runs; a command created after that
   * is answered 202 only once committed, and lmdb commits in order: so after
   * this, whatever that prune deleted is gone from every read.
   */
  const barrier = async () => { await create('ret-barrier', { name: 'barrier' }); };
  /** The device answers the next COMMAND with `status`; resolves once the API shows `expected`. */
  const answer = async (id: string, status: number, expected: string) => {
    expect((await nextCommand(device!)).commandId).toBe(id);
    device!.send(encodeResult(id, status));
    await waitFor(async () => (await statusOf('ret-online', id)) === expected, { timeoutMs: 10_000, what: `${id} ${expected}` });
  };

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'pulsewire-retention-'));
    database = await freshDatabase('retention');
    await start();
  });
  afterAll(async () => {
    await device?.close();
    await hub?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  const ids: Record<string, string> = {};

  it('schedules the prune hourly, and keeps everything while it is younger than the retention', async () => {
    expect(scheduler.delays).toEqual([PRUNE_EVERY_MS]);
    expect(PRUNE_EVERY_MS).toBe(3_600_000);
    const secret = (await hub.api('PUT', '/v1/devices/ret-online')).body.secret as string;
    expect((await hub.api('PUT', '/v1/devices/ret-offline')).status).toBe(201);
    expect((await hub.api('PUT', '/v1/devices/ret-barrier')).status).toBe(201);
    device = await TestDevice.connect(hub.deviceUrl, { id: 'ret-online', secret });

    ids.succeeded = await create('ret-online', { name: 'done' });
    await answer(ids.succeeded, 1, 'succeeded');
    ids.received = await create('ret-online', { name: 'working', timeoutMs: 3_600_000 });
    await answer(ids.received, 0, 'received');
    ids.sent = await create('ret-online', { name: 'silent', timeoutMs: 3_600_000 });
    expect((await nextCommand(device)).commandId).toBe(ids.sent);
    await waitFor(async () => (await statusOf('ret-online', ids.sent!)) === 'sent', { timeoutMs: 10_000, what: 'sent' });
    ids.queued = await create('ret-offline', { name: 'waiting' });
    ids.cancelled = await create('ret-offline', { name: 'withdrawn' });
    expect((await hub.api('DELETE', `/v1/devices/ret-offline/commands/${ids.cancelled}`)).body.status).toBe('cancelled');

    nowMs = t0 + 40_000;
    ids.late = await create('ret-online', { name: 'late' });
    await answer(ids.late, 1, 'succeeded');
    scheduler.fire();
    expect(scheduler.delays).toEqual([PRUNE_EVERY_MS]); // it schedules the next one
    await barrier();
    expect(await listed('ret-online')).toEqual([[ids.succeeded, 'succeeded'], [ids.received, 'received'], [ids.sent, 'sent'], [ids.late, 'succeeded']]);
    expect(await listed('ret-offline')).toEqual([[ids.queued, 'queued'], [ids.cancelled, 'cancelled']]);
  });

  it('the hourly prune deletes finished commands completed longer than the retention ago, and only those', async () => {
    nowMs = t0 + RETENTION_MS + 1000;
    scheduler.fire();
    // One prune decides in one pass and deletes in one commit: once one is gone, the others were kept.
    await waitFor(async () => (await statusOf('ret-online', ids.succeeded!)) === 404, { timeoutMs: 10_000, what: 'succeeded command pruned' });
    const gone = await hub.api('GET', `/v1/devices/ret-offline/commands/${ids.cancelled}`);
    expect(gone.status).toBe(404);
    expect(gone.body.error.code).toBe('PW_ERR_COMMAND_NOT_FOUND');
    // Finished 21 s ago: kept. Unfinished and created 61 s ago: kept.
    expect(await listed('ret-online')).toEqual([[ids.received, 'received'], [ids.sent, 'sent'], [ids.late, 'succeeded']]);
    expect(await listed('ret-offline')).toEqual([[ids.queued, 'queued']]);

    nowMs = t0 + 40_000 + RETENTION_MS + 1000;
    scheduler.fire();
    await waitFor(async () => (await statusOf('ret-online', ids.late!)) === 404, { timeoutMs: 10_000, what: 'late command pruned' });
    expect(await listed('ret-online')).toEqual([[ids.received, 'received'], [ids.sent, 'sent']]);
    expect(await listed('ret-offline')).toEqual([[ids.queued, 'queued']]);
  });

  it('the prune at start deletes what passed the retention while the hub was down', async () => {
    ids.beforeRestart = await create('ret-online', { name: 'before-restart' });
    await answer(ids.beforeRestart, 2, 'failed');
    await device!.close();
    device = undefined;
    await hub.close();

    nowMs += RETENTION_MS + 1000;
    await start();
    await waitFor(async () => (await statusOf('ret-online', ids.beforeRestart!)) === 404, { timeoutMs: 10_000, what: 'pruned at start' });
    expect(await listed('ret-online')).toEqual([[ids.received, 'received'], [ids.sent, 'sent']]);
    expect(await listed('ret-offline')).toEqual([[ids.queued, 'queued']]);
    expect(scheduler.delays).toEqual([PRUNE_EVERY_MS]);
  });
});
