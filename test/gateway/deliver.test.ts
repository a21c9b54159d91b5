/**
 * DeviceSession.deliver on real WebSocket connections: one outcome per
 * message, and at most once as the rule. A frame handed to the open socket
 * counts as (possibly) written even when its write then fails: the frames
 * of one tick go out corked in one writev, and a writev that fails part-way
 * fails every callback while its first frames may have reached the device.
 * Only a frame never handed over (the session already closed) is unsent.
 */
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { DeviceRuntime } from '../../src/gateway/device-runtime.js';
import { DeviceSession, type SessionHost } from '../../src/gateway/device-session.js';
import { decodeHubFrame } from '../../src/protocol/codec.js';
import type { HubMessage } from '../../src/protocol/messages.js';

const MESSAGES: HubMessage[] = [
  { type: 6, version: 1, state: new Map([['interval', 30]]) },
  { type: 3, commandId: 'c-01', name: 'open_valve', args: null },
  { type: 3, commandId: 'c-02', name: 'reboot', args: null },
];

describe('DeviceSession.deliver', () => {
  const cleanup: (() => void)[] = [];
  afterEach(() => { for (const step of cleanup.splice(0).reverse()) step(); });

  /** A hub-side session over a real loopback WebSocket, and the device's end of it. */
  async function connected() {
    const server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    cleanup.push(() => server.close());
    await new Promise((resolve) => server.once('listening', resolve));
    const accepted = new Promise<WebSocket>((resolve) => server.once('connection', resolve));
    const device = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`);
    cleanup.push(() => device.terminate());
    const received: HubMessage[] = [];
    device.on('message', (data) => received.push(decodeHubFrame(new Uint8Array(data as Buffer)) as HubMessage));
    device.on('error', () => undefined);
    const socket = await accepted;
    cleanup.push(() => socket.terminate());
    const debug: string[] = [];
    let ended!: () => void;
    const gone = new Promise<void>((resolve) => { ended = resolve; });
    // Only what deliver and a close touch; no device frames are sent in these tests.
    const host = { logger: { info() {}, warn() {}, debug: (_obj: object, msg: string) => debug.push(msg) }, ended: () => ended() } as unknown as SessionHost;
    const session = new DeviceSession(socket, new DeviceRuntime('valve-1'), '127.0.0.1', host);
    if (device.readyState !== WebSocket.OPEN) await new Promise((resolve) => device.once('open', resolve));
    return { session, socket, received, debug, ended: gone };
  }

  it('answers true for each message once written, and the device gets them in order', async () => {
    const { session, received } = await connected();
    expect(await session.deliver(MESSAGES)).toEqual([true, true, true]);
    await expect.poll(() => received.length).toBe(3);
    expect(received.map((m) => (m.type === 3 ? m.commandId : m.type))).toEqual([6, 'c-01', 'c-02']);
  });

  it('counts frames handed to the socket as written when the write then fails (never queued again)', async () => {
    const { session, socket, debug } = await connected();
    const outcome = session.deliver(MESSAGES);
    // The TCP connection dies in the same tick, before the corked frames are flushed: every send callback fails.
    (socket as unknown as { _socket: { destroy(): void } })._socket.destroy();
    expect(await outcome).toEqual([true, true, true]);
    expect(debug.some((m) => /counted as sent/.test(m))).toBe(true);
  });

  it('answers false for every message when the session is gone before the write', async () => {
    const { session, socket, ended } = await connected();
    socket.terminate();
    await ended;
    expect(await session.deliver(MESSAGES)).toEqual([false, false, false]);
  });
});
