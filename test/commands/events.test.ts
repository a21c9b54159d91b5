/**
 * The hub's one event bus (src/events/bus.ts) as the live stream, jobs and
 * later Node-RED see it: a real hub, a real device over WebSocket, and the
 * exact sequence of `command.status`, `state.desired` and `state.reported`
 * events for each path through protocol section 3 (docs/protocol.md,
 * "Commands and state"), including a command sent before a hub restart.
 *
 * After a command's final event each test waits QUIET_MS more, so an event
 * that should not exist (a second final status, a late "sent") is caught.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isFinal } from '../../src/commands/command-service.js';
import type { CommandStatus, CommandView } from '../../src/commands/types.js';
import type { EventBus, HubEvents } from '../../src/events/bus.js';
import { encodeReported, encodeResult } from '../../src/protocol/encode.js';
import type { DesiredMessage } from '../../src/protocol/messages.js';
import { hubHasRead, nextCommand } from '../support/commands.js';
import { TestDevice } from '../support/device-client.js';
import { restartableHub, startHub, type TestHub } from '../support/hub.js';
import { sleep, waitFor } from '../support/wait.js';

const QUIET_MS = 300;

type Step = [previous: CommandStatus | 'created', status: CommandStatus];

/** Every `command.status` event of one device from now on. */
function watchCommands(bus: EventBus, deviceId: string) {
  const events: HubEvents['command.status'][] = [];
  const off = bus.on('command.status', (event) => {
    if (event.command.deviceId === deviceId) events.push(event);
  });
  return {
    events,
    off,
    steps: (): Step[] => events.map((e) => [e.previous ?? 'created', e.command.status]),
    ids: () => [...new Set(events.map((e) => e.command.id))],
    /** Resolves with the command of the first final event, once QUIET_MS have passed after it. */
    async final(timeoutMs = 20_000): Promise<CommandView> {
      await waitFor(() => events.some((e) => isFinal(e.command.status)), { timeoutMs, what: `final command.status of ${deviceId}` });
      await sleep(QUIET_MS);
      return events.find((e) => isFinal(e.command.status))!.command;
    },
  };
}

describe('command and state events on the bus', () => {
  let hub: TestHub;
  const unsubscribe: (() => void)[] = [];
  beforeAll(async () => { hub = await startHub(); });
  afterAll(async () => {
    for (const off of unsubscribe) off();
    await hub?.close();
  });

  const register = async (id: string): Promise<string> => {
    const r = await hub.api('PUT', `/v1/devices/${id}`);
    expect(r.status).toBe(201);
    return r.body.secret as string;
  };
  const connect = async (id: string) => TestDevice.connect(hub.deviceUrl, { id, secret: await register(id) });
  const watch = (id: string) => {
    const watcher = watchCommands(hub.app.bus, id);
    unsubscribe.push(watcher.off);
    return watcher;
  };

  it('a command that succeeds: queued, sent, received, succeeded, each carrying the command as the API shows it', async () => {
    const device = await connect('ev-ok');
    const watcher = watch('ev-ok');
    const created = await hub.api('POST', '/v1/devices/ev-ok/commands', { name: 'set_interval', args: { seconds: 30 } });
    expect(created.status).toBe(202);
    // Emitted on creation, before the 202 went out, with no previous status.
    expect(watcher.events[0]).toEqual({ command: created.body, previous: undefined });
    const command = await nextCommand(device);
    expect(command.commandId).toBe(created.body.id);
    device.send(encodeResult(command.commandId, 0, 'applying'));
    device.send(encodeResult(command.commandId, 1, new Map([['ok', true]])));
    const final = await watcher.final();
    expect(watcher.steps()).toEqual([['created', 'queued'], ['queued', 'sent'], ['sent', 'received'], ['received', 'succeeded']]);
    expect(watcher.ids()).toEqual([created.body.id]);
    const [queued, sent, received] = watcher.events.map((e) => e.command);
    expect(queued!.sentAt).toBeUndefined();
    expect(Date.parse(sent!.sentAt!)).toBeGreaterThanOrEqual(Date.parse(created.body.createdAt));
    expect(received!.result).toBe('applying');
    expect(final).toMatchObject({ status: 'succeeded', result: { ok: true }, sentAt: sent!.sentAt });
    expect(Date.parse(final.completedAt!)).toBeGreaterThanOrEqual(Date.parse(final.sentAt!));
    // The last event is what the API answers.
    expect((await hub.api('GET', `/v1/devices/ev-ok/commands/${created.body.id}`)).body).toEqual(final);
    await device.close();
  });

  it('a command the device rejects: queued, sent, rejected with its payload', async () => {
    const device = await connect('ev-rejected');
    const watcher = watch('ev-rejected');
    const created = await hub.api('POST', '/v1/devices/ev-rejected/commands', { name: 'self_destruct' });
    const command = await nextCommand(device);
    device.send(encodeResult(command.commandId, 3, 'unknown command'));
    const final = await watcher.final();
    expect(watcher.steps()).toEqual([['created', 'queued'], ['queued', 'sent'], ['sent', 'rejected']]);
    expect(watcher.ids()).toEqual([created.body.id]);
    expect(final).toMatchObject({ status: 'rejected', result: 'unknown command' });
    await device.close();
  });

  it('a command cancelled while queued: queued, cancelled, and nothing when the device connects later', async () => {
    const secret = await register('ev-cancel');
    const watcher = watch('ev-cancel');
    const created = await hub.api('POST', '/v1/devices/ev-cancel/commands', { name: 'reboot' });
    expect((await hub.api('DELETE', `/v1/devices/ev-cancel/commands/${created.body.id}`)).status).toBe(200);
    const final = await watcher.final();
    expect(final).toMatchObject({ status: 'cancelled', result: 'cancelled by operator' });
    expect(final.sentAt).toBeUndefined();
    const device = await TestDevice.connect(hub.deviceUrl, { id: 'ev-cancel', secret });
    await expect(device.next(QUIET_MS)).rejects.toThrow(/no hub message/);
    expect(watcher.steps()).toEqual([['created', 'queued'], ['queued', 'cancelled']]);
    await device.close();
  });

  it('a command whose TTL passes while the device is offline: queued, expired, never sent', async () => {
    const secret = await register('ev-expire');
    const watcher = watch('ev-expire');
    const created = await hub.api('POST', '/v1/devices/ev-expire/commands', { name: 'reboot', ttlMs: 300 });
    const final = await watcher.final();
    expect(watcher.steps()).toEqual([['created', 'queued'], ['queued', 'expired']]);
    expect(watcher.ids()).toEqual([created.body.id]);
    expect(final).toMatchObject({ status: 'expired', result: 'not sent within ttlMs 300' });
    expect(final.sentAt).toBeUndefined();
    expect(Date.parse(final.completedAt!) - Date.parse(final.createdAt)).toBeGreaterThanOrEqual(290);
    const device = await TestDevice.connect(hub.deviceUrl, { id: 'ev-expire', secret });
    await expect(device.next(QUIET_MS)).rejects.toThrow(/no hub message/);
    expect(watcher.steps()).toHaveLength(2);
    await device.close();
  });

  it('a sent command with no RESULT: queued, sent, timed-out, and a late RESULT adds no event', async () => {
    const device = await connect('ev-timeout');
    const watcher = watch('ev-timeout');
    const created = await hub.api('POST', '/v1/devices/ev-timeout/commands', { name: 'slow', timeoutMs: 300 });
    await nextCommand(device);
    const final = await watcher.final();
    expect(watcher.steps()).toEqual([['created', 'queued'], ['queued', 'sent'], ['sent', 'timed-out']]);
    expect(watcher.ids()).toEqual([created.body.id]);
    expect(final).toMatchObject({ status: 'timed-out', result: 'no final RESULT within 300 ms' });
    expect(Date.parse(final.completedAt!) - Date.parse(final.sentAt!)).toBeGreaterThanOrEqual(290);
    device.send(encodeResult(created.body.id, 1));
    // An absence: the hub has read the late RESULT, and QUIET_MS more pass without an event.
    await hubHasRead(device);
    await sleep(QUIET_MS);
    expect(watcher.steps()).toHaveLength(3);
    await device.close();
  });

  it('state: one state.desired per accepted PATCH (whole document, version), one state.reported per REPORTED (merged document)', async () => {
    const device = await connect('ev-state');
    type StateEvent = { kind: 'desired'; event: HubEvents['state.desired'] } | { kind: 'reported'; event: HubEvents['state.reported'] };
    const events: StateEvent[] = [];
    unsubscribe.push(
      hub.app.bus.on('state.desired', (event) => { if (event.deviceId === 'ev-state') events.push({ kind: 'desired', event }); }),
      hub.app.bus.on('state.reported', (event) => { if (event.deviceId === 'ev-state') events.push({ kind: 'reported', event }); }),
    );

    const first = await hub.api('PATCH', '/v1/devices/ev-state/desired', { interval: 30, led: { color: 'red' } });
    expect(first.status).toBe(200);
    expect(events).toHaveLength(1); // emitted before the answer
    const second = await hub.api('PATCH', '/v1/devices/ev-state/desired', { interval: null, led: { blink: true } });
    expect(second.status).toBe(200);
    const refused = await hub.api('PATCH', '/v1/devices/ev-state/desired', { blob: 'x'.repeat(70_000) });
    expect(refused.body.error.code).toBe('PW_ERR_STATE_TOO_BIG');
    expect(events).toEqual([
      { kind: 'desired', event: { deviceId: 'ev-state', desired: { interval: 30, led: { color: 'red' } }, version: 1, at: Date.parse(first.body.desiredAt) } },
      { kind: 'desired', event: { deviceId: 'ev-state', desired: { led: { color: 'red', blink: true } }, version: 2, at: Date.parse(second.body.desiredAt) } },
    ]);
    // The online device got both versions, in order.
    const desired = [(await device.next()) as DesiredMessage, (await device.next()) as DesiredMessage];
    expect(desired.map((m) => [m.type, m.version])).toEqual([[6, 1], [6, 2]]);

    device.sendHex('8205a262667765312e322e3068696e74657276616c181e'); // protocol section 7: REPORTED {fw: "1.2.0", interval: 30}
    device.send(encodeReported(new Map<string, unknown>([['interval', null], ['uptime', 5]])));
    await waitFor(() => events.length >= 4, { timeoutMs: 20_000, what: 'two state.reported events' });
    await sleep(QUIET_MS);
    expect(events.slice(2)).toEqual([
      { kind: 'reported', event: { deviceId: 'ev-state', reported: { fw: '1.2.0', interval: 30 }, at: expect.any(Number) } },
      { kind: 'reported', event: { deviceId: 'ev-state', reported: { fw: '1.2.0', uptime: 5 }, at: expect.any(Number) } },
    ]);
    const state = (await hub.api('GET', '/v1/devices/ev-state/state')).body;
    expect(state).toMatchObject({ reported: { fw: '1.2.0', uptime: 5 }, version: 2 });
    expect(Date.parse(state.reportedAt)).toBe((events[3]!.event as HubEvents['state.reported']).at);
    await device.close();
  });
});

describe('command events across a hub restart', () => {
  const TIMEOUT_MS = 8000;
  /** Between sentAt and the restart: what tells a timeout counted from sentAt from one counted from the restart. */
  const DOWN_MS = 2000;
  let hubs: Awaited<ReturnType<typeof restartableHub>> | undefined;
  afterAll(async () => { await hubs?.close(); });

  it('a command sent before the restart, with no RESULT, ends timed-out after it, at sentAt + timeoutMs, and is not sent again', async () => {
    hubs = await restartableHub('cmd-events');
    const first = await hubs.start();
    const secret = (await first.api('PUT', '/v1/devices/ev-restart')).body.secret as string;
    const device = await TestDevice.connect(first.deviceUrl, { id: 'ev-restart', secret });
    const before = watchCommands(first.app.bus, 'ev-restart');
    const created = await first.api('POST', '/v1/devices/ev-restart/commands', { name: 'reboot', timeoutMs: TIMEOUT_MS });
    expect((await nextCommand(device)).commandId).toBe(created.body.id);
    await waitFor(() => before.events.some((e) => e.command.status === 'sent'), { timeoutMs: 20_000, what: 'sent before the restart' });
    const sentAt = before.events.at(-1)!.command.sentAt!;

    await first.close();
    before.off();
    expect(before.steps()).toEqual([['created', 'queued'], ['queued', 'sent']]);
    expect((await device.closed).code).toBe(1001);
    await sleep(DOWN_MS);

    const restartAt = Date.now();
    const second = await hubs.start();
    const after = watchCommands(second.app.bus, 'ev-restart');
    const reloaded = await second.api('GET', `/v1/devices/ev-restart/commands/${created.body.id}`);
    expect(reloaded.body).toMatchObject({ status: 'sent', sentAt });
    const again = await TestDevice.connect(second.deviceUrl, { id: 'ev-restart', secret });
    const final = await after.final(TIMEOUT_MS + 30_000);
    after.off();
    expect(after.steps()).toEqual([['sent', 'timed-out']]);
    expect(after.ids()).toEqual([created.body.id]);
    expect(final).toMatchObject({ status: 'timed-out', sentAt, result: `no final RESULT within ${TIMEOUT_MS} ms` });
    // Counted from sentAt: never early; and before the time a count from the restart would give.
    // The margin for a late timer is the time from sentAt to the restart (DOWN_MS and more), not a guess.
    expect(Date.parse(final.completedAt!) - Date.parse(sentAt)).toBeGreaterThanOrEqual(TIMEOUT_MS - 10);
    expect(Date.parse(final.completedAt!)).toBeLessThan(restartAt + TIMEOUT_MS);
    // At most once: the reconnected device got nothing (no COMMAND again, and no desired state is set).
    expect(again.rawFrames).toEqual([]);
    await again.close();
  }, 90_000);
});
