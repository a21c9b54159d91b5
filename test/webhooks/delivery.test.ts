/**
 * Delivery from a real hub to loopback receivers, with a short retry config:
 * - a receiver down for a while (connections refused, then 503s) gets every
 *   event once it is back, in the order they happened, each id once;
 * - a receiver that never answers holds up only its own endpoint, not another
 *   endpoint's deliveries nor the devices' telemetry;
 * - an event whose retries ran out is in the failed list, and a replay
 *   delivers it with the same id;
 * - an endpoint failing for long enough is paused with the reason; events
 *   are not queued while paused; resume delivers what was queued before;
 * - alert events on the bus reach the endpoints that asked for them.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { encodeTelemetry, senmlRecord } from '../../src/protocol/index.js';
import { encodeResult } from '../../src/protocol/encode.js';
import { nextCommand } from '../support/commands.js';
import type { AlertView } from '../../src/alerts/types.js';
import { TestDevice } from '../support/device-client.js';
import { startHub, type TestHub } from '../support/hub.js';
import { sleep, until, waitFor } from '../support/wait.js';
import { Receiver } from './receiver.js';

const FAST = {
  PULSEWIRE_WEBHOOK_ALLOW_PRIVATE: 'true',
  PULSEWIRE_WEBHOOK_BACKOFF_MS: '50',
  PULSEWIRE_WEBHOOK_BACKOFF_MAX_MS: '400',
  PULSEWIRE_WEBHOOK_TIMEOUT_MS: '30000',
};

/** Connects and disconnects `ids` one after the other: online then offline per device, in this order. */
async function cycle(hub: TestHub, ids: string[]): Promise<string[]> {
  const expected: string[] = [];
  for (const id of ids) {
    const device = await TestDevice.connect(hub.deviceUrl, { id });
    await device.close();
    await waitFor(async () => (await hub.api('GET', `/v1/devices/${id}`)).body.online === false, { what: `${id} offline` });
    expected.push(`device.online ${id}`, `device.offline ${id}`);
  }
  return expected;
}

const seen = (receiver: Receiver) => receiver.received.map((r) => `${r.event.type} ${r.event.data.deviceId}`);

describe('webhook delivery', () => {
  let hub: TestHub;
  const receivers: Receiver[] = [];
  const receiver = async () => {
    const r = await Receiver.start();
    receivers.push(r);
    return r;
  };
  const register = async (url: string, body: object = {}) => {
    const res = await hub.api('POST', '/v1/webhooks', { url, events: ['device.online', 'device.offline'], ...body });
    expect(res.status).toBe(201);
    return res.body.id as string;
  };

  beforeAll(async () => {
    hub = await startHub({ ...FAST, PULSEWIRE_WEBHOOK_RETRY_FOR_MS: '600000', PULSEWIRE_WEBHOOK_PAUSE_AFTER_MS: '600000' });
  });
  afterEach(async () => {
    for (const endpoint of hub.app.webhooks.endpoints.all()) await hub.api('DELETE', `/v1/webhooks/${endpoint.id}`);
  });
  afterAll(async () => {
    await hub?.close();
    for (const r of receivers) await r.close();
  });

  it('keeps every event while the receiver is down and delivers them in order, each id once, when it is back', async () => {
    const r = await receiver();
    const id = await register(r.url, { devicePrefix: 'down-' });
    await r.down();
    const expected = await cycle(hub, ['down-1', 'down-2', 'down-3']);
    await waitFor(async () => (await hub.api('GET', `/v1/webhooks/${id}`)).body.failingSince !== null, { what: 'endpoint failing' });
    // Back, but answering 503 for a while: still failing, still nothing lost.
    r.mode = { kind: 'status', status: 503 };
    await r.up();
    await waitFor(() => r.arrived >= 2, { what: 'retries reach the receiver' });
    expect(r.received).toHaveLength(0);
    // A retry is the same event: the head of the queue, again and again, under one id.
    expect(new Set(r.attemptIds).size).toBe(1);
    expect((await hub.api('GET', `/v1/webhooks/${id}`)).body).toMatchObject({ queued: 6, lastFailure: 'HTTP 503' });
    expected.push(...(await cycle(hub, ['down-4'])));
    r.mode = { kind: 'ok' };
    await waitFor(() => r.received.length >= expected.length, { what: 'all delivered' });
    await sleep(300);
    expect(seen(r)).toEqual(expected);
    expect(new Set(r.acceptedIds).size).toBe(expected.length);
    // The id the receiver refused is the one it accepted first (receivers dedupe by it).
    expect(r.acceptedIds[0]).toBe(r.attemptIds[0]);
    expect((await hub.api('GET', `/v1/webhooks/${id}`)).body).toMatchObject({ queued: 0, failingSince: null });
    const metrics = (await hub.api('GET', '/metrics')).body as string;
    const value = (name: string) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(metrics)?.[1]);
    expect(value('pulsewire_webhook_deliveries_total')).toBeGreaterThanOrEqual(expected.length);
    expect(value('pulsewire_webhook_events_queued_total')).toBeGreaterThanOrEqual(expected.length);
    expect(value('pulsewire_webhook_attempts_failed_total')).toBeGreaterThan(0);
  });

  it('a receiver that never answers holds up only its own endpoint', async () => {
    const slow = await receiver();
    const fast = await receiver();
    slow.mode = { kind: 'hang' };
    await register(slow.url, { devicePrefix: 'iso-' });
    await register(fast.url, { devicePrefix: 'iso-' });
    const expected = await cycle(hub, ['iso-1', 'iso-2']);
    await waitFor(() => fast.received.length >= expected.length, { what: 'the other endpoint got everything' });
    expect(seen(fast)).toEqual(expected);
    // The slow one holds its first request, unanswered, and has sent nothing after it.
    await waitFor(() => slow.arrived >= 1, { what: 'the slow endpoint got its first request' });
    expect(slow.arrived).toBe(1);
    expect(slow.received).toHaveLength(0);
    // Devices' telemetry is ACKed meanwhile.
    const device = await TestDevice.connect(hub.deviceUrl, { id: 'iso-telemetry' });
    device.send(encodeTelemetry(1, [senmlRecord({ n: 'temp', v: 21.5 })]));
    expect(await device.next()).toEqual({ type: 2, seq: 1 });
    await device.close();
    slow.release();
    slow.mode = { kind: 'ok' };
    await waitFor(() => slow.received.length >= 5, { what: 'the slow endpoint catches up' });
  });

  it('delivers command.final and job.finished from real commands and jobs, once each', async () => {
    const r = await receiver();
    await register(r.url, { events: ['command.final', 'job.finished'] });
    const device = await TestDevice.connect(hub.deviceUrl, { id: 'cmdwh-1' });
    const created = await hub.api('POST', '/v1/devices/cmdwh-1/commands', { name: 'blink' });
    expect(created.status).toBe(202);
    const command = await nextCommand(device);
    device.send(encodeResult(command.commandId, 0));
    device.send(encodeResult(command.commandId, 1, new Map([['ok', true]])));
    // A job for an offline device, cancelled: its command ends cancelled and the job finishes.
    expect((await hub.api('PUT', '/v1/devices/cmdwh-off')).status).toBe(201);
    const job = await hub.api('POST', '/v1/jobs', { command: { name: 'reboot' }, target: { ids: ['cmdwh-off'] } });
    expect(job.status).toBe(201);
    await waitFor(async () => (await hub.api('GET', `/v1/jobs/${job.body.id}/commands`)).body.commands.length === 1, { what: 'job command created' });
    expect((await hub.api('POST', `/v1/jobs/${job.body.id}/cancel`)).status).toBe(200);
    await waitFor(() => r.received.length >= 3, { what: 'command.final twice and job.finished' });
    await sleep(300);
    await device.close();
    const got = r.received.map((x) => x.event);
    expect(got.filter((e) => e.type === 'job.finished')).toHaveLength(1);
    expect(got.find((e) => e.type === 'job.finished')!.data.job).toMatchObject({ id: job.body.id, status: 'cancelled' });
    const finals = got.filter((e) => e.type === 'command.final').map((e) => [e.data.command.deviceId, e.data.command.name, e.data.command.status]);
    expect(finals.sort()).toEqual([['cmdwh-1', 'blink', 'succeeded'], ['cmdwh-off', 'reboot', 'cancelled']]);
    expect(got.find((e) => e.type === 'command.final' && e.data.command.name === 'blink')!.data.command.result).toEqual({ ok: true });
    expect(r.received).toHaveLength(3);
  });

  it('sends to the new URL after a PATCH, and stops sending after a DELETE', async () => {
    const before = await receiver();
    const after = await receiver();
    const id = await register(before.url, { events: ['alert.firing'] });
    const fire = (deviceId: string) => hub.app.bus.emit('alert.firing', { alert: {
      id: `r/${deviceId}/t`, ruleId: 'r', ruleName: 'n', deviceId, series: 't', condition: { kind: 'above', threshold: 1 }, state: 'firing', value: 2, firingSince: Date.now(),
    } });
    fire('url-1');
    await waitFor(() => before.received.length === 1, { what: 'first URL' });
    expect((await hub.api('PATCH', `/v1/webhooks/${id}`, { url: after.url })).body.url).toBe(after.url);
    fire('url-2');
    await waitFor(() => after.received.length === 1, { what: 'second URL' });
    expect(after.received[0]!.event.data.alert.deviceId).toBe('url-2');
    expect((await hub.api('DELETE', `/v1/webhooks/${id}`)).status).toBe(204);
    fire('url-3');
    await sleep(300);
    expect([before.arrived, after.arrived]).toEqual([1, 1]);
  });

  it('sends again at once on a new connection when the kept-alive one is closed under a request, and counts no failure', async () => {
    // A receiver that closes each connection when its second request arrives, as a server closing an idle
    // kept-alive connection just as the next event goes out does.
    const requestsOn = new WeakMap<Socket, number>();
    const accepted: string[] = [];
    let closedUnder = 0;
    const server = http.createServer((req, res) => {
      const n = (requestsOn.get(req.socket) ?? 0) + 1;
      requestsOn.set(req.socket, n);
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        if (n >= 2) {
          closedUnder++;
          req.socket.destroy();
          return;
        }
        accepted.push(JSON.parse(Buffer.concat(chunks).toString('utf8')).id);
        res.writeHead(204).end();
      });
    });
    // Its own idle close (5 s by default) would close connections the hub wanted to reuse on a slow machine.
    server.keepAliveTimeout = 120_000;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const id = await register(`http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, { events: ['alert.firing'] });
      for (const deviceId of ['ka-1', 'ka-2', 'ka-3']) {
        hub.app.bus.emit('alert.firing', { alert: {
          id: `r/${deviceId}/t`, ruleId: 'r', ruleName: 'n', deviceId, series: 't', condition: { kind: 'above', threshold: 1 }, state: 'firing', value: 2, firingSince: Date.now(),
        } });
        await waitFor(() => accepted.length === Number(deviceId.slice(3)), { what: `${deviceId} delivered` });
      }
      expect(closedUnder).toBeGreaterThanOrEqual(2);
      expect(new Set(accepted).size).toBe(3);
      expect((await hub.api('GET', `/v1/webhooks/${id}`)).body).toMatchObject({ queued: 0, lastFailure: null, failingSince: null });
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('delivers alert events from the bus to the endpoints that asked for them', async () => {
    const r = await receiver();
    await register(r.url, { events: ['alert.firing', 'alert.resolved'], deviceIds: ['pump-1'] });
    const alert: AlertView = {
      id: 'r1/pump-1/pressure', ruleId: 'r1', ruleName: 'high pressure', deviceId: 'pump-1', series: 'pressure',
      condition: { kind: 'above', threshold: 5 }, state: 'firing', value: 6.2, firingSince: Date.now(),
    };
    hub.app.bus.emit('alert.firing', { alert: { ...alert, deviceId: 'pump-2', id: 'r1/pump-2/pressure' } });
    hub.app.bus.emit('alert.firing', { alert });
    hub.app.bus.emit('alert.resolved', { alert: { ...alert, state: 'resolved', resolvedAt: Date.now() } });
    await waitFor(() => r.received.length >= 2, { what: 'alerts delivered' });
    await sleep(200);
    expect(r.received.map((x) => [x.event.type, x.event.data.alert.deviceId, x.event.data.alert.state])).toEqual([
      ['alert.firing', 'pump-1', 'firing'], ['alert.resolved', 'pump-1', 'resolved'],
    ]);
  });
});

describe('webhook delivery deadline', () => {
  let hub: TestHub;
  let r: Receiver;

  beforeAll(async () => {
    r = await Receiver.start();
    hub = await startHub({
      ...FAST, PULSEWIRE_WEBHOOK_TIMEOUT_MS: '300', PULSEWIRE_WEBHOOK_RETRY_FOR_MS: '600000', PULSEWIRE_WEBHOOK_PAUSE_AFTER_MS: '600000',
    });
  });
  afterAll(async () => {
    await hub?.close();
    await r?.close();
  });

  it('gives up on a receiver that never answers after PULSEWIRE_WEBHOOK_TIMEOUT_MS and sends the same event again', async () => {
    r.mode = { kind: 'hang' };
    const id = (await hub.api('POST', '/v1/webhooks', { url: r.url, events: ['alert.firing'] })).body.id as string;
    hub.app.bus.emit('alert.firing', { alert: {
      id: 'r/dl-1/t', ruleId: 'r', ruleName: 'n', deviceId: 'dl-1', series: 't', condition: { kind: 'above', threshold: 1 }, state: 'firing', value: 2, firingSince: Date.now(),
    } });
    // A hanging request is never answered: a second one comes only because the hub cut the first at its deadline.
    await waitFor(() => r.arrived >= 2, { what: 'the attempt cut at its deadline and retried' });
    expect((await hub.api('GET', `/v1/webhooks/${id}`)).body).toMatchObject({ queued: 1, lastFailure: 'no answer within 300 ms' });
    r.mode = { kind: 'ok' };
    await waitFor(() => r.received.length >= 1, { what: 'delivered once the receiver answers' });
    // On a busy machine an answered attempt may still miss the 300 ms deadline and go again: always this one event.
    expect(new Set([...r.attemptIds, ...r.acceptedIds])).toEqual(new Set([r.attemptIds[0]]));
  });
});

describe('webhook failed list, replay and pausing', () => {
  let hub: TestHub;
  let r: Receiver;

  beforeAll(async () => {
    r = await Receiver.start();
    hub = await startHub({ ...FAST, PULSEWIRE_WEBHOOK_RETRY_FOR_MS: '500', PULSEWIRE_WEBHOOK_PAUSE_AFTER_MS: '2000' });
  });
  afterAll(async () => {
    await hub?.close();
    await r?.close();
  });

  it('moves events whose retries ran out to the failed list, replays them with their ids, pauses an endpoint that keeps failing', async () => {
    r.mode = { kind: 'status', status: 500 };
    const created = await hub.api('POST', '/v1/webhooks', { url: r.url, events: ['device.online', 'device.offline'] });
    const id = created.body.id as string;
    const expected = await cycle(hub, ['fail-1']);
    const failed = await until(async () => {
      const list = await hub.api('GET', `/v1/webhooks/${id}/failed`);
      return list.body.events.length === 2 ? list.body.events : undefined;
    });
    expect(failed.map((f: any) => `${f.event.type} ${f.event.data.deviceId}`)).toEqual(expected);
    expect(failed[0].attempts).toBeGreaterThanOrEqual(1);
    expect(failed[0].reason).toMatch(/retries ran out after \d+ attempts; last: HTTP 500/);
    const failedIds = failed.map((f: any) => f.event.id);

    // Still failing while events keep coming: paused by the hub, with the reason.
    // Bounded by time, not by a count of cycles: a fast machine ran 200 cycles within the 2 s pause window.
    let paused: any;
    const giveUpAt = Date.now() + 60_000;
    for (let n = 2; !paused && Date.now() < giveUpAt; n++) {
      await cycle(hub, [`fail-${n}`]);
      const view = (await hub.api('GET', `/v1/webhooks/${id}`)).body;
      if (view.paused) paused = view;
      else await sleep(100);
    }
    expect(paused?.pausedReason).toMatch(/^every attempt failed for \d+ s; last: HTTP 500$/);
    expect(paused.failingSince).not.toBeNull();
    // Nothing is queued for it while it is paused, and nothing is sent. The API reads the store, which shows the
    // pause as soon as it is written; the recorder's copy of the endpoint hears of it once lmdb committed it.
    await waitFor(() => hub.app.webhooks.endpoints.cached(id)?.paused === true, { what: "the recorder's copy paused" });
    const queuedAtPause = (await hub.api('GET', `/v1/webhooks/${id}`)).body.queued as number;
    const arrivedWhilePaused = r.arrived;
    await cycle(hub, ['while-paused']);
    await sleep(300);
    expect((await hub.api('GET', `/v1/webhooks/${id}`)).body.queued).toBe(queuedAtPause);
    expect(r.arrived).toBe(arrivedWhilePaused);

    // The receiver is fixed; the operator resumes (what was queued goes), then replays one event, then the rest.
    r.mode = { kind: 'ok' };
    expect((await hub.api('POST', `/v1/webhooks/${id}/resume`)).body).toMatchObject({ paused: false, failingSince: null, pausedReason: null });
    await waitFor(() => r.received.length === queuedAtPause, { what: 'queued events delivered after resume' });
    const allFailed = (await hub.api('GET', `/v1/webhooks/${id}/failed?limit=1000`)).body.events.map((f: any) => f.event.id) as string[];
    expect(allFailed.slice(0, 2)).toEqual(failedIds);
    expect((await hub.api('POST', `/v1/webhooks/${id}/replay`, { eventIds: [failedIds[1]] })).body).toEqual({ replayed: 1 });
    await waitFor(() => r.received.length === queuedAtPause + 1, { what: 'one replayed' });
    expect(r.acceptedIds.at(-1)).toBe(failedIds[1]);
    expect((await hub.api('POST', `/v1/webhooks/${id}/replay`)).body).toEqual({ replayed: allFailed.length - 1 });
    await waitFor(() => r.received.length === queuedAtPause + allFailed.length, { what: 'all replayed' });
    await sleep(200);
    expect(r.acceptedIds.slice(queuedAtPause).sort()).toEqual([...allFailed].sort());
    expect(new Set(r.acceptedIds).size).toBe(r.acceptedIds.length);
    expect(r.received.some((x) => x.event.data.deviceId === 'while-paused')).toBe(false);
    expect((await hub.api('GET', `/v1/webhooks/${id}/failed`)).body.events).toEqual([]);
    expect((await hub.api('POST', `/v1/webhooks/${id}/replay`)).body).toEqual({ replayed: 0 });
  });
});
