/**
 * A final status is shown only once it is durable: the `command.status`
 * event, a `?wait` answer (waitFinal) and a plain read see "succeeded" (or
 * expired, cancelled...) only after lmdb committed it. A hub killed right
 * after a RESULT then loses only what no operator saw (docs/protocol.md,
 * "Across a hub restart"). Real lmdb; "durable" is checked by reading the
 * database directly, past the store's overlay of uncommitted records.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { isFinal, type CommandService } from '../../src/commands/command-service.js';
import type { CommandRecord } from '../../src/commands/command-store.js';
import type { CommandStatus } from '../../src/commands/types.js';
import type { LmdbBucket } from '../../src/stores/lmdb-bucket.js';
import { startServices } from '../support/services.js';
import { LMDB } from '../support/stores.js';

const DEVICE = 'pump-1';

describe('final command statuses are shown after their commit', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => { for (const step of cleanup.splice(0).reverse()) await step(); });

  async function setUp() {
    const handle = await LMDB.open();
    cleanup.push(() => handle.close());
    const hub = await startServices(handle.stores);
    cleanup.push(() => hub.stop());
    const { commands, bus } = hub;
    const { points } = hub;
    // What a restarted hub would read: committed records only.
    // A final command is moved from the queue's bucket to the finished ones afterwards: either counts.
    const buckets = [handle.stores.commands, handle.stores.commandsDone] as LmdbBucket<CommandRecord>[];
    const durable = (id: string): CommandStatus | undefined => buckets.map((b) => b.committed([DEVICE, id])?.status).find((s) => s !== undefined);
    /** For each final event: the status lmdb held at that moment. */
    const atEvent: { status: CommandStatus; durable: CommandStatus | undefined }[] = [];
    bus.on('command.status', ({ command }) => {
      if (isFinal(command.status)) atEvent.push({ status: command.status, durable: durable(command.id) });
    });
    return { commands, durable, atEvent, points };
  }

  /** A command the device has: created, taken by the outbox, written. */
  async function sentCommand(commands: CommandService) {
    const created = await commands.create(DEVICE, { name: 'prime' });
    const taken = await commands.takeQueued(DEVICE);
    commands.delivered(taken, [true]);
    return created.id;
  }

  it('a final RESULT: reads, waiters and the event see it only once committed', async () => {
    const { commands, durable, atEvent, points } = await setUp();
    const id = await sentCommand(commands);
    const waited = commands.waitFinal(DEVICE, id, 20_000).then((view) => ({ view, durable: durable(id) }));
    commands.onResult(DEVICE, { type: 4, commandId: id, status: 1, payload: 'primed' });
    // Same turn: the commit has not happened, so nothing shows the final status yet.
    expect((await commands.get(DEVICE, id))!.status).toBe('sent');
    expect((await commands.list(DEVICE, undefined, 10)).map((c) => c.status)).toEqual(['sent']);
    expect(atEvent).toEqual([]);
    expect(points).toEqual([]);
    const { view, durable: durableAtAnswer } = await waited;
    expect(view).toMatchObject({ status: 'succeeded', result: 'primed' });
    expect(durableAtAnswer).toBe('succeeded');
    expect(atEvent).toEqual([{ status: 'succeeded', durable: 'succeeded' }]);
    expect((await commands.get(DEVICE, id))!.status).toBe('succeeded');
    await expect.poll(() => points).toEqual([[DEVICE, 'succeeded']]);
  });

  it('a second final RESULT in the commit window is ignored: one final status, one event', async () => {
    const { commands, atEvent } = await setUp();
    const id = await sentCommand(commands);
    commands.onResult(DEVICE, { type: 4, commandId: id, status: 1 });
    commands.onResult(DEVICE, { type: 4, commandId: id, status: 2, payload: 'late' });
    expect((await commands.waitFinal(DEVICE, id, 20_000))!.status).toBe('succeeded');
    expect(atEvent).toEqual([{ status: 'succeeded', durable: 'succeeded' }]);
  });

  it('expiry and cancellation are durable before they are shown too', async () => {
    const { commands, durable, atEvent } = await setUp();
    const expiring = await commands.create(DEVICE, { name: 'soon', ttlMs: 50 });
    const final = await commands.waitFinal(DEVICE, expiring.id, 20_000);
    expect(final!.status).toBe('expired');
    const queued = await commands.create(DEVICE, { name: 'never' });
    const cancelled = await commands.cancel(DEVICE, queued.id);
    expect(cancelled.status).toBe('cancelled');
    expect(durable(queued.id)).toBe('cancelled');
    expect(atEvent).toEqual([{ status: 'expired', durable: 'expired' }, { status: 'cancelled', durable: 'cancelled' }]);
  });
});
