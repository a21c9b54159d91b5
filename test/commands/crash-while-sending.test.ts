/**
 * At most once across a hub crash: a hub that dies after writing a COMMAND
 * frame but before committing "sent" must not send it again after a restart
 * (a "reboot" or "open valve" twice is the harm). And within one batch: when
 * a later frame of a write fails, the frames written before it are sent,
 * not queued again (the last describe).
 *
 * The crash is made at that exact point with the real stores and the
 * command side wired as app.ts wires it (src/services.ts): the device's link
 * takes the frame and never reports the write done, so "sent" is never
 * committed. Every write issued before that point was awaited, so closing
 * the stores then commits nothing a kill -9 would lose; new services then
 * start on the same stores, as the next hub process would (with a node id of
 * its own, as a restarted process has by default).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { DeviceLink } from '../../src/commands/outbox.js';
import type { CommandMessage, HubMessage } from '../../src/protocol/messages.js';
import { startServices, type ServiceHarness } from '../support/services.js';
import { LMDB, type StoresHandle } from '../support/stores.js';
import { until } from '../support/wait.js';

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

let run = 0;
/** One hub's command side on the stores; `connect` makes `link` the device's connection and lets the outbox run. */
async function hubOn(handle: StoresHandle) {
  const hub: ServiceHarness = await startServices(handle.stores, { nodeId: `hub-run-${++run}` });
  return {
    commands: hub.commands,
    state: hub.deviceState,
    connect(next: Link): void {
      hub.connect(DEVICE, next);
    },
    stop: () => hub.stop(),
  };
}

describe('a hub crash while a command is being sent', () => {
  const handles: StoresHandle[] = [];
  const stops: (() => Promise<void>)[] = [];
  const start = async (handle: StoresHandle) => {
    const hub = await hubOn(handle);
    stops.push(() => hub.stop());
    return hub;
  };
  /** The crash: this hub's services stop where they are, and its stores close (nothing more reaches them). */
  const crash = async (handle: StoresHandle) => {
    await stops.pop()!();
    await handle.reopen();
  };
  const newStores = async () => {
    const handle = await LMDB.open();
    handles.push(handle);
    return handle;
  };
  afterEach(async () => {
    for (const stop of stops.splice(0).reverse()) await stop().catch(() => undefined);
    for (const handle of handles.splice(0)) await handle.close();
  });

  it('does not send the command again after the restart; it reaches a final state', async () => {
    const stores = await newStores();
    const before = await start(stores);
    const reboot = await before.commands.create(DEVICE, { name: 'reboot', timeoutMs: 300 });
    const valve = await before.commands.create(DEVICE, { name: 'open_valve', timeoutMs: 30_000 });
    const dying = new Link('never');
    before.connect(dying);
    await until(() => (dying.commands.length === 2 ? true : undefined));
    expect(dying.commands.map((c) => c.commandId)).toEqual([reboot.id, valve.id]);
    expect((await before.commands.get(DEVICE, reboot.id))!.status).toBe('queued'); // "sent" was never committed
    await crash(stores); // nothing after the frame reaches the disk

    const after = await start(stores);
    // Counted as sent when the write began (its mark's time), so its timeout runs from then.
    await until(async () => ((await after.commands.get(DEVICE, reboot.id))!.status === 'sent' ? true : undefined));
    const restored = (await after.commands.get(DEVICE, reboot.id))!;
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
    const stores = await newStores();
    const before = await start(stores);
    const command = await before.commands.create(DEVICE, { name: 'reboot' });
    const refused = new Link(false);
    before.connect(refused);
    await until(() => (refused.commands.length === 1 ? true : undefined));
    // Back in the queue, unmarked: the frame certainly never left.
    await until(async () => {
      const c = await before.commands.store.get(DEVICE, command.id);
      return c?.status === 'queued' && c.sendingAt === undefined ? true : undefined;
    });
    await crash(stores);

    const after = await start(stores);
    expect((await after.commands.get(DEVICE, command.id))!.status).toBe('queued');
    const reconnected = new Link(true);
    after.connect(reconnected);
    await until(async () => ((await after.commands.get(DEVICE, command.id))!.status === 'sent' ? true : undefined));
    expect(reconnected.commands.map((c) => c.commandId)).toEqual([command.id]);
  });
});

describe('a write of several frames that fails part-way', () => {
  const stops: (() => Promise<void>)[] = [];
  const handles: StoresHandle[] = [];
  afterEach(async () => {
    for (const stop of stops.splice(0).reverse()) await stop().catch(() => undefined);
    for (const handle of handles.splice(0)) await handle.close();
  });

  it('marks the frames written before the failure sent, never sends them again, and sends the rest once, in order', async () => {
    const handle = await LMDB.open();
    handles.push(handle);
    const hub = await hubOn(handle);
    stops.push(() => hub.stop());
    const ids: string[] = [];
    for (const name of ['open_valve', 'set_rate', 'close_valve']) ids.push((await hub.commands.create(DEVICE, { name })).id);
    // The first frame went out, then the connection failed: the other two never left.
    const failing = new Link((index) => index === 0);
    hub.connect(failing);
    await until(async () => ((await hub.commands.get(DEVICE, ids[0]!))!.status === 'sent' ? true : undefined));
    expect(failing.commands.map((c) => c.commandId)).toEqual(ids);
    await until(async () => ((await hub.commands.store.byDevice(DEVICE)).filter((c) => c.status === 'queued' && c.sendingAt === undefined).length === 2 ? true : undefined));

    const next = new Link(true);
    hub.connect(next);
    await until(async () => ((await hub.commands.list(DEVICE, 'sent', 10)).length === 3 ? true : undefined));
    expect(next.commands.map((c) => c.commandId)).toEqual([ids[1], ids[2]]);
    // The device answers the first command from its first connection: matched by id, not connection.
    hub.commands.onResult(DEVICE, { type: 4, commandId: ids[0]!, status: 1 });
    expect((await hub.commands.waitFinal(DEVICE, ids[0]!, 20_000))!.status).toBe('succeeded');
    const all = [...failing.commands, ...next.commands].map((c) => c.commandId);
    expect(all.filter((id) => id === ids[0])).toHaveLength(1);
  });

  it('counts the DESIRED frame of the write on its own: a failed one goes out again, the written command does not', async () => {
    const handle = await LMDB.open();
    handles.push(handle);
    const hub = await hubOn(handle);
    stops.push(() => hub.stop());
    await hub.state.patchDesired(DEVICE, { interval: 30 });
    const command = await hub.commands.create(DEVICE, { name: 'reboot' });
    // Only the COMMAND frame made it.
    const link = new Link((_index, message) => message.type === 3);
    hub.connect(link);
    await until(async () => ((await hub.commands.get(DEVICE, command.id))!.status === 'sent' ? true : undefined));
    expect(link.messages.map((m) => m.type)).toEqual([6, 3]);
    // The next round on the same link repeats DESIRED (same version: the device never got it), not the command.
    hub.connect(link);
    await until(() => (link.messages.length === 3 ? true : undefined));
    expect(link.messages.map((m) => m.type)).toEqual([6, 3, 6]);
    expect(link.messages[2]).toMatchObject({ type: 6, version: 1 });
  });
});
