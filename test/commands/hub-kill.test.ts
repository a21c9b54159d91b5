/**
 * Commands across a real `kill -9` of the hub process (src/main.ts, its own
 * process, restarted on the same data dir on a new port):
 *
 * - queued commands of an offline device are still queued, and go out once,
 *   in order, when it connects to the new hub;
 * - a sent command is not sent again (at most once, docs/protocol.md) and
 *   keeps its sentAt; the device's RESULT after the restart still finishes
 *   it, as does one for a command it had already answered "received";
 * - a sent command whose timeout ran out while the hub was down ends
 *   timed-out.
 *
 * The kill comes right after a barrier: a POST answered 202 is committed
 * (docs/protocol.md), and lmdb commits in order, so every status change
 * before it is on disk; the test asserts what the hub promised, not what a
 * race left behind.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeResult } from '../../src/protocol/encode.js';
import { nextCommand } from '../support/commands.js';
import { TestDevice } from '../support/device-client.js';
import { startHubProcess, type HubProcess } from '../support/hub-process.js';
import { OPERATOR_TOKEN } from '../support/hub.js';
import { freshDatabase, type FreshDatabase } from '../support/influx.js';
import { waitFor } from '../support/wait.js';

/** The operator API of a hub process, with the bearer token. */
async function api(hub: HubProcess, method: string, route: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${hub.baseUrl}${route}`, {
    method,
    headers: { authorization: `Bearer ${OPERATOR_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

describe('commands across kill -9 of the hub process', () => {
  let dataDir: string;
  let db: FreshDatabase;
  const hubs: HubProcess[] = [];
  const start = async () => {
    const hub = await startHubProcess({ dataDir, env: { PULSEWIRE_INFLUX_URL: db.url } });
    hubs.push(hub);
    return hub;
  };

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'pulsewire-hub-kill-'));
    db = await freshDatabase('hub_kill');
  });
  afterAll(async () => {
    for (const hub of hubs) await hub.kill('SIGTERM');
    await db?.drop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('keeps queued commands queued, sends nothing twice, and finishes sent ones by RESULT or timeout', async () => {
    const before = await start();
    const secrets: Record<string, string> = {};
    for (const id of ['kill-offline', 'kill-online', 'kill-barrier']) {
      const res = await api(before, 'PUT', `/v1/devices/${id}`);
      expect(res.status).toBe(201);
      secrets[id] = res.body.secret;
    }
    const post = async (hub: HubProcess, deviceId: string, body: object): Promise<string> => {
      const res = await api(hub, 'POST', `/v1/devices/${deviceId}/commands`, body);
      expect(res.status).toBe(202);
      return res.body.id as string;
    };
    const view = async (hub: HubProcess, deviceId: string, id: string) => (await api(hub, 'GET', `/v1/devices/${deviceId}/commands/${id}`)).body;
    const reaches = (hub: HubProcess, deviceId: string, id: string, status: string) =>
      waitFor(async () => (await view(hub, deviceId, id)).status === status, { timeoutMs: 15_000, what: `${id} ${status}` });

    const queued = [await post(before, 'kill-offline', { name: 'first', args: 1 }), await post(before, 'kill-offline', { name: 'second', args: 2 })];

    const online = await TestDevice.connect(before.deviceUrl, { id: 'kill-online', secret: secrets['kill-online'] });
    const silent = await post(before, 'kill-online', { name: 'silent', timeoutMs: 600_000 });
    expect((await nextCommand(online)).commandId).toBe(silent);
    await reaches(before, 'kill-online', silent, 'sent');
    const working = await post(before, 'kill-online', { name: 'working', timeoutMs: 600_000 });
    expect((await nextCommand(online)).commandId).toBe(working);
    online.send(encodeResult(working, 0));
    await reaches(before, 'kill-online', working, 'received');
    const short = await post(before, 'kill-online', { name: 'short', timeoutMs: 5000 });
    expect((await nextCommand(online)).commandId).toBe(short);
    await reaches(before, 'kill-online', short, 'sent');
    const silentBefore = await view(before, 'kill-online', silent);

    await post(before, 'kill-barrier', { name: 'barrier' });
    expect(await before.kill()).toBeNull();
    expect(before.child.signalCode).toBe('SIGKILL');
    expect((await online.closed).code).toBe(1006); // no close frame: the process died

    const after = await start();
    expect((await api(after, 'GET', '/v1/devices/kill-offline/commands')).body.commands.map((c: { id: string; status: string }) => [c.id, c.status]))
      .toEqual([[queued[0], 'queued'], [queued[1], 'queued']]);
    expect(await view(after, 'kill-online', silent)).toEqual(silentBefore);
    expect((await view(after, 'kill-online', working)).status).toBe('received');
    const timedOut = (await api(after, 'GET', `/v1/devices/kill-online/commands/${short}?wait=60`)).body;
    expect(timedOut).toMatchObject({ status: 'timed-out', result: 'no final RESULT within 5000 ms' });

    // The offline device gets its queue once, in order: the next frame after the two is a new command.
    const offline = await TestDevice.connect(after.deviceUrl, { id: 'kill-offline', secret: secrets['kill-offline'] });
    const delivered = [await nextCommand(offline), await nextCommand(offline)];
    expect(delivered.map((c) => [c.commandId, c.name, c.args])).toEqual([[queued[0], 'first', 1], [queued[1], 'second', 2]]);
    const third = await post(after, 'kill-offline', { name: 'third' });
    expect((await nextCommand(offline)).commandId).toBe(third);
    offline.send(encodeResult(queued[0]!, 1));
    await reaches(after, 'kill-offline', queued[0]!, 'succeeded');

    // The online device reconnects: neither sent command comes again, the next frame is a new one.
    const again = await TestDevice.connect(after.deviceUrl, { id: 'kill-online', secret: secrets['kill-online'] });
    const marker = await post(after, 'kill-online', { name: 'marker' });
    expect((await nextCommand(again)).commandId).toBe(marker);
    // RESULTs are matched by device and command id, across connections and hub processes.
    again.send(encodeResult(silent, 1, 'done'));
    again.send(encodeResult(working, 2, 'gave up'));
    expect((await api(after, 'GET', `/v1/devices/kill-online/commands/${silent}?wait=30`)).body).toMatchObject({ status: 'succeeded', result: 'done' });
    expect((await api(after, 'GET', `/v1/devices/kill-online/commands/${working}?wait=30`)).body).toMatchObject({ status: 'failed', result: 'gave up' });

    await offline.close();
    await again.close();
  }, 180_000);
});
