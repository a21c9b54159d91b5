/**
 * Events queued for an endpoint that no longer exists (appended while it was
 * being deleted, or by a node that had not heard of the deletion yet) would
 * sit in the outbox forever: nothing delivers them and the deletion already
 * swept. The delivering node drops them after a grace, on both backends, and
 * keeps the events of an endpoint whose record reaches it within that grace
 * (created on another node) and of a paused one.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { WebhookDeliverer } from '../../src/webhooks/deliverer.js';
import { EndpointStore } from '../../src/webhooks/endpoint-store.js';
import { WebhookOutbox } from '../../src/webhooks/outbox.js';
import type { WebhookEvent, WebhookRecord } from '../../src/webhooks/types.js';
import { JETSTREAM, LMDB, type StoresHandle } from '../support/stores.js';
import { sleep, waitFor } from '../support/wait.js';

const GRACE_MS = 1500;
const quiet = { info() {}, warn() {} };
const event = (n: number): WebhookEvent => ({ id: `evt_${String(n).padStart(24, '0')}`, type: 'job.finished', time: new Date(0).toISOString(), data: { n } });

describe.each([LMDB, JETSTREAM])('webhook events of deleted endpoints ($name)', (backend) => {
  let handle: StoresHandle | undefined;
  let stop: (() => void) | undefined;
  afterEach(async () => {
    stop?.();
    await handle?.close();
  });

  it('are dropped after the grace; those of a paused endpoint, or of one whose record arrives late, stay', async () => {
    handle = await backend.open();
    const { stores } = handle;
    const endpoints = new EndpointStore({ bucket: stores.webhooks, maxEndpoints: 10 });
    await endpoints.open();
    const outbox = new WebhookOutbox({ outbox: stores.webhookOutbox, failed: stores.webhookFailed, nodeId: 'n1' });
    const deliverer = new WebhookDeliverer({
      endpoints, outbox, config: loadConfig({}).webhooks, resolve: undefined, logger: quiet, orphanGraceMs: GRACE_MS,
    });
    deliverer.acquired();
    stop = () => {
      deliverer.lost();
      endpoints.close();
    };

    const input = { url: 'https://receiver.example/hook', events: ['job.finished' as const] };
    const paused = await endpoints.create(input);
    await endpoints.pause(paused.id, 'by an operator');
    const deleted = await endpoints.create(input);
    await endpoints.delete(deleted.id);
    await outbox.dropEndpoint(deleted.id);
    const lateId = 'wh_00000000000000aa';

    // Appended after the deletion's sweep, as a lagging node or an append in flight would.
    await outbox.append(deleted.id, event(1));
    await outbox.append(deleted.id, event(2));
    await outbox.append(paused.id, event(3));
    await outbox.append(lateId, event(4));
    expect(await outbox.queued(deleted.id)).toBe(2);
    // The late endpoint's record arrives (another node created it) within the grace.
    const now = Date.now();
    const late: WebhookRecord = { ...input, id: lateId, secret: 'whsec_x', createdAt: now, updatedAt: now, paused: true, pausedReason: 'by an operator' };
    expect(await stores.webhooks.create(lateId, late)).toBeDefined();

    await waitFor(async () => (await outbox.queued(deleted.id)) === 0, { what: "the deleted endpoint's events dropped" });
    await sleep(GRACE_MS);
    expect(await outbox.queued(paused.id)).toBe(1);
    expect(await outbox.queued(lateId)).toBe(1);
    expect((await outbox.head(lateId))?.value.event.id).toBe(event(4).id);
  });
});
