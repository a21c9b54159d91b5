/**
 * The webhook outbox on both backends (lmdb, and JetStream as a cluster uses
 * it): each endpoint's queue in the order events were appended, its head the
 * oldest; the count capped; events given up listed in the failed list in
 * order, paged by cursor; a replay appends the named event at the end of the
 * queue with its id; and all of it as a restarted hub finds it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { collect } from '../../src/stores/bucket.js';
import { WebhookOutbox } from '../../src/webhooks/outbox.js';
import type { WebhookEvent } from '../../src/webhooks/types.js';
import { JETSTREAM, LMDB, type StoresHandle } from '../support/stores.js';

const event = (n: number): WebhookEvent => ({ id: `evt_${String(n).padStart(24, '0')}`, type: 'device.online', time: new Date(n).toISOString(), data: { n } });
const A = 'wh_000000000000000a';
const B = 'wh_000000000000000b';

describe.each([LMDB, JETSTREAM])('webhook outbox ($name)', (backend) => {
  let handle: StoresHandle | undefined;
  afterEach(async () => {
    await handle?.close();
  });

  it('queues in order per endpoint, pages the failed list, replays with the same id, and keeps it all across a reopen', async () => {
    handle = await backend.open();
    const open = () => new WebhookOutbox({ outbox: handle!.stores.webhookOutbox, failed: handle!.stores.webhookFailed, nodeId: 'n1' });
    let outbox = open();
    for (let n = 1; n <= 6; n++) await outbox.append(A, event(n));
    for (let n = 101; n <= 102; n++) await outbox.append(B, event(n));
    expect(await outbox.queued(A)).toBe(6);
    expect(await outbox.queued(A, 4)).toBe(4);
    expect(await outbox.queued(B)).toBe(2);
    expect((await outbox.head(A))?.value.event.id).toBe(event(1).id);

    // Events 1 to 3 run out of retries, one after the other.
    for (let n = 1; n <= 3; n++) {
      const head = (await outbox.head(A))!;
      expect(head.value.event.id).toBe(event(n).id);
      const value = await outbox.attemptFailed(head, 'HTTP 500', 1000 + n);
      expect(value).toMatchObject({ attempts: 1, firstFailureAt: 1000 + n, lastFailure: 'HTTP 500' });
      await outbox.giveUp(head, value, 'retries ran out', 2000 + n);
    }
    expect(await outbox.queued(A)).toBe(3);
    const first = await outbox.failedList(A, { limit: 2 });
    expect(first.map((f) => f.entry.event.id)).toEqual([event(1).id, event(2).id]);
    expect(first[0]!.entry).toMatchObject({ attempts: 1, failedAt: 2001, reason: 'retries ran out' });
    const rest = await outbox.failedList(A, { after: first[1]!.key, limit: 2 });
    expect(rest.map((f) => f.entry.event.id)).toEqual([event(3).id]);
    expect(await outbox.failedList(B, { limit: 10 })).toEqual([]);

    // Event 2 replayed: at the end of A's queue, same id, a fresh retry window.
    expect(await outbox.replay(A, new Set([event(2).id]))).toBe(1);
    expect((await outbox.failedList(A, { limit: 10 })).map((f) => f.entry.event.id)).toEqual([event(1).id, event(3).id]);

    // As a restarted hub finds it.
    await handle.reopen();
    outbox = open();
    const queue = await collect(handle.stores.webhookOutbox.entries({ group: A }));
    expect(queue.map((e) => e.value.event.id)).toEqual([event(4).id, event(5).id, event(6).id, event(2).id]);
    expect(queue.at(-1)!.value.attempts).toBe(0);
    expect((await outbox.failedList(A, { limit: 10 })).map((f) => f.entry.event.id)).toEqual([event(1).id, event(3).id]);
    expect(await outbox.queued(B)).toBe(2);

    await outbox.dropEndpoint(A);
    expect(await outbox.queued(A)).toBe(0);
    expect(await outbox.failedList(A, { limit: 10 })).toEqual([]);
    expect(await outbox.queued(B)).toBe(2);
  });
});
