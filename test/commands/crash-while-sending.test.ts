/**
 * At most once across a hub crash: a hub that dies after writing a COMMAND
 * frame but before committing "sent" must not send it again after a restart
 * (a "reboot" or "open valve" twice is the harm). And within one batch: when
 * a later frame of a write fails, the frames written before it are sent,
 * not queued again (the last describe).
 *
 * The crash is made at that exact point with the real lmdb store and the
 * command side wired as app.ts wires it: the device's link takes the frame
 * and never reports the write done, so "sent" is never committed. Every
 * write issued before that point was awaited, so closing the store then
 * commits nothing a kill -9 would lose; a new store and service then start
 * on the same directory, as the next hub process would.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CommandService, type CommandLimits } from '../../src/commands/command-service.js';
import { CommandStore } from '../../src/commands/command-store.js';
import { DeviceOutbox, type DeviceLink } from '../../src/commands/outbox.js';
import { EventBus } from '../../src/events/bus.js';
import type { CommandMessage, HubMessage } from '../../src/protocol/messages.js';
import { StateService } from '../../src/state/state-service.js';
import { StateStore } from '../../src/state/state-store.js';
import { until } from '../support/wait.js';

const limits: CommandLimits = {
  commandQueueMax: 100, commandTtlMs: 3_600_000, commandTimeoutMs: 30_000, commandRetentionMs: 86_400_000, maxMessageBytes: 65_536,
};
const quiet = { info() {}, warn() {} };
const DEVICE = 'valve-1';

/**
 * The device's connection as the outbox sees it: records every message;
 * `written` is what deliver() answers for each message of a write (a
 * function of its index in the write), 'never': it does not answer.
 */
class Link implements DeviceLink {
  readonly messages: HubMessage[] = [];
  constructor(readonly written: boolean | 'never' | ((index: number, message: HubMessage) => boolean)) {}
  deliver(messages: HubMessage[]): Promise<boolean[]> {
    this.messages.push(...messages);
    const { written } = this;
    if (written === 'never') return new Promise(() => {});
    return Promise.resolve(messages.map((m, i) => (typeof written === 'function' ? written(i, m) : written)));
  }
  get commands(): CommandMessage[] {
    return this.messages.filter((m): m is CommandMessage => m.type === 3);
  }
}

/** One hub's command side on `dir`; `connect` makes `link` the device's connection and lets the outbox run. */
function hubOn(dir: string) {
  const store = CommandStore.open(dir);
  const bus = new EventBus();
  const commands = new CommandService({ store, bus, limits, points: { append: async () => {} }, logger: quiet });
  const state = new StateService({ store: new StateStore(store.root), bus, maxMessageBytes: limits.maxMessageBytes, logger: quiet });
  let link: Link | undefined;
  const outbox = new DeviceOutbox({ bus, commands, state, linkOf: () => link, logger: quiet });
  commands.start();
  return {
    commands,
    state,
    connect(next: Link): void {
      link = next;
      bus.emit('device.online', { deviceId: DEVICE, at: Date.now(), remoteAddress: '127.0.0.1', method: 'secret' });
    },
    async stop(): Promise<void> {
      outbox.close();
      await commands.close();
      await state.close();
      await store.close();
    },
  };
}

describe('a hub crash while a command is being sent', () => {
  const dirs: string[] = [];
  const stops: (() => Promise<void>)[] = [];
  const start = (dir: string) => {
    const hub = hubOn(dir);
    stops.push(() => hub.stop());
    return hub;
  };
  const newDir = async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pulsewire-sending-'));
    dirs.push(dir);
    return dir;
  };
  afterEach(async () => {
    for (const stop of stops.splice(0).reverse()) await stop().catch(() => undefined);
    for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
  });

  it('does not send the command again after the restart; it reaches a final state', async () => {
    const dir = await newDir();
    const before = start(dir);
    const reboot = await before.commands.create(DEVICE, { name: 'reboot', timeoutMs: 300 });
    const valve = await before.commands.create(DEVICE, { name: 'open_valve', timeoutMs: 30_000 });
    const dying = new Link('never');
    before.connect(dying);
    await until(() => (dying.commands.length === 2 ? true : undefined));
    expect(dying.commands.map((c) => c.commandId)).toEqual([reboot.id, valve.id]);
    expect(before.commands.get(DEVICE, reboot.id)!.status).toBe('queued'); // "sent" was never committed
    await stops.pop()!(); // the crash: nothing after the frame reaches the disk

    const after = start(dir);
    // Counted as sent when the write began, so its timeout runs from then.
    const restored = after.commands.get(DEVICE, reboot.id)!;
    expect(restored.status).toBe('sent');
    expect(Date.parse(restored.sentAt!)).toBeGreaterThanOrEqual(Date.parse(reboot.createdAt));
    expect(Date.parse(restored.sentAt!)).toBeLessThanOrEqual(Date.now());
    const reconnected = new Link(true);
    after.connect(reconnected);
    // The device answers for the valve (it got it before the crash); it never answers for the reboot.
    after.commands.onResult(DEVICE, { type: 4, commandId: valve.id, status: 1 });
    expect((await after.commands.waitFinal(DEVICE, valve.id, 20_000))!.status).toBe('succeeded');
    expect((await after.commands.waitFinal(DEVICE, reboot.id, 20_000))!.status).toBe('timed-out');
    expect(reconnected.commands).toEqual([]);
  });

  it('still sends, once, a command whose write failed before the crash', async () => {
    const dir = await newDir();
    const before = start(dir);
    const command = await before.commands.create(DEVICE, { name: 'reboot' });
    const refused = new Link(false);
    before.connect(refused);
    await until(() => (refused.commands.length === 1 ? true : undefined));
    await until(() => (before.commands.get(DEVICE, command.id)!.status === 'queued' ? true : undefined));
    await stops.pop()!();

    const after = start(dir);
    expect(after.commands.get(DEVICE, command.id)!.status).toBe('queued');
    const reconnected = new Link(true);
    after.connect(reconnected);
    await until(() => (after.commands.get(DEVICE, command.id)!.status === 'sent' ? true : undefined));
    expect(reconnected.commands.map((c) => c.commandId)).toEqual([command.id]);
  });
});

describe('a write of several frames that fails part-way', () => {
  const stops: (() => Promise<void>)[] = [];
  const dirs: string[] = [];
  afterEach(async () => {
    for (const stop of stops.splice(0).reverse()) await stop().catch(() => undefined);
    for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
  });

  it('marks the frames written before the failure sent, never sends them again, and sends the rest once, in order', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pulsewire-partial-'));
    dirs.push(dir);
    const hub = hubOn(dir);
    stops.push(() => hub.stop());
    const ids: string[] = [];
    for (const name of ['open_valve', 'set_rate', 'close_valve']) ids.push((await hub.commands.create(DEVICE, { name })).id);
    // The first frame went out, then the connection failed: the other two never left.
    const failing = new Link((index) => index === 0);
    hub.connect(failing);
    await until(() => (hub.commands.get(DEVICE, ids[0]!)!.status === 'sent' ? true : undefined));
    expect(failing.commands.map((c) => c.commandId)).toEqual(ids);
    await until(() => (hub.commands.list(DEVICE, 'queued', 10).length === 2 ? true : undefined));

    const next = new Link(true);
    hub.connect(next);
    await until(() => (hub.commands.list(DEVICE, 'sent', 10).length === 3 ? true : undefined));
    expect(next.commands.map((c) => c.commandId)).toEqual([ids[1], ids[2]]);
    // The device answers the first command from its first connection: matched by id, not connection.
    hub.commands.onResult(DEVICE, { type: 4, commandId: ids[0]!, status: 1 });
    expect((await hub.commands.waitFinal(DEVICE, ids[0]!, 20_000))!.status).toBe('succeeded');
    const all = [...failing.commands, ...next.commands].map((c) => c.commandId);
    expect(all.filter((id) => id === ids[0])).toHaveLength(1);
  });

  it('counts the DESIRED frame of the write on its own: a failed one goes out again, the written command does not', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pulsewire-partial-'));
    dirs.push(dir);
    const hub = hubOn(dir);
    stops.push(() => hub.stop());
    await hub.state.patchDesired(DEVICE, { interval: 30 });
    const command = await hub.commands.create(DEVICE, { name: 'reboot' });
    // Only the COMMAND frame made it.
    const link = new Link((_index, message) => message.type === 3);
    hub.connect(link);
    await until(() => (hub.commands.get(DEVICE, command.id)!.status === 'sent' ? true : undefined));
    expect(link.messages.map((m) => m.type)).toEqual([6, 3]);
    // The next round on the same link repeats DESIRED (same version: the device never got it), not the command.
    hub.connect(link);
    await until(() => (link.messages.length === 3 ? true : undefined));
    expect(link.messages.map((m) => m.type)).toEqual([6, 3, 6]);
    expect(link.messages[2]).toMatchObject({ type: 6, version: 1 });
  });
});
