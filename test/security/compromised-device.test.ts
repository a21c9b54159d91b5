/**
 * A compromised device: an attacker who extracted one device's valid secret
 * from its flash. What it holds is that device's identity and nothing more.
 * Tried here, over real sockets: the secret for another id, readings named
 * after another device, a RESULT for another device's command, a REPORTED
 * meant to change another device's state, and taking its own session over.
 * Each reaches only the compromised device's own data; the victim is never
 * touched, stays connected, and its own answers still count.
 *
 * Its floods (rates, names, series, frames) are the noisy neighbour's, tried
 * in test/gateway/device-rates.test.ts, device-names.test.ts and the rest of
 * SECURITY.md's table.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeReported, encodeResult, encodeTelemetry } from '../../src/protocol/encode.js';
import { senmlRecord } from '../../src/protocol/senml-labels.js';
import { hubHasRead, nextCommand } from '../support/commands.js';
import { enrollmentSecret, TestDevice, type Refusal } from '../support/device-client.js';
import { basic } from '../support/http-device.js';
import { startHub, type TestHub } from '../support/hub.js';
import { until } from '../support/wait.js';

describe('a compromised device holding one valid secret', () => {
  let hub: TestHub;
  let mallorySecret: string;
  let victimSecret: string;
  let victim: TestDevice;
  beforeAll(async () => {
    hub = await startHub();
    mallorySecret = (await hub.api('PUT', '/v1/devices/cd-mallory')).body.secret as string;
    victimSecret = (await hub.api('PUT', '/v1/devices/cd-victim')).body.secret as string;
    victim = await TestDevice.connect(hub.deviceUrl, { id: 'cd-victim', secret: victimSecret });
  });
  afterAll(async () => {
    await victim?.close();
    await hub?.close();
  });

  const refusal = (promise: Promise<unknown>) => promise.then(() => { throw new Error('expected a refusal'); }, (r: Refusal) => r);

  it('its secret, or its enrollment-derived secret, opens no other device: 401 on the WebSocket and the HTTP fallback', async () => {
    expect((await refusal(TestDevice.connect(hub.deviceUrl, { id: 'cd-victim', secret: mallorySecret }))).status).toBe(401);
    // A device provisioned from the enrollment key holds HMAC(key, its own id); it cannot derive another's.
    expect((await refusal(TestDevice.connect(hub.deviceUrl, { id: 'cd-victim', secret: enrollmentSecret('cd-enrolled') }))).status).toBe(401);
    expect((await refusal(TestDevice.connect(hub.deviceUrl, { id: 'cd-unregistered', secret: enrollmentSecret('cd-enrolled') }))).status).toBe(401);
    const fallback = await fetch(`${hub.baseUrl}/v1/device/messages`, { method: 'GET', headers: { authorization: basic('cd-victim', mallorySecret) } });
    expect(fallback.status).toBe(401);
    // Control: the secret opens its own device.
    const own = await TestDevice.connect(hub.deviceUrl, { id: 'cd-mallory', secret: mallorySecret });
    await own.close();
  });

  it('readings it names after another device are stored as its own: the victim has no series and no points', async () => {
    const mallory = await TestDevice.connect(hub.deviceUrl, { id: 'cd-mallory', secret: mallorySecret });
    mallory.send(encodeTelemetry(1, [
      senmlRecord({ bn: 'cd-victim/', n: 'temp', v: 99 }),
      senmlRecord({ n: 'cd-victim', v: 98 }), // the base name carries over (SenML): 'cd-victim/cd-victim'
    ]));
    expect(await mallory.next()).toEqual({ type: 2, seq: 1 });
    await mallory.close();
    const stored = await hub.db.query(`SELECT "value", "name" FROM "telemetry" WHERE "device" = 'cd-mallory'`);
    expect(stored.map((row: any) => row.name).sort()).toEqual(['cd-victim/cd-victim', 'cd-victim/temp']);
    expect(await hub.db.query(`SELECT count("value") FROM "telemetry" WHERE "device" = 'cd-victim'`)).toHaveLength(0);
    expect((await hub.api('GET', '/v1/devices/cd-victim/series')).body.series).toEqual([]);
  });

  it('a RESULT for another device\'s command is ignored: the command waits for its own device\'s answer', async () => {
    const created = await hub.api('POST', '/v1/devices/cd-victim/commands', { name: 'unlock' });
    expect(created.status).toBe(202);
    const command = await nextCommand(victim);
    expect(command.commandId).toBe(created.body.id);
    await until(async () => ((await hub.api('GET', `/v1/devices/cd-victim/commands/${created.body.id}`)).body.status === 'sent' ? true : undefined), 20_000);
    // The id travels to the victim only, but an attacker may still learn or guess it.
    const mallory = await TestDevice.connect(hub.deviceUrl, { id: 'cd-mallory', secret: mallorySecret });
    mallory.send(encodeResult(command.commandId, 3, 'refused by mallory'));
    mallory.send(encodeResult(command.commandId, 1, 'done by mallory'));
    await hubHasRead(mallory);
    expect((await hub.api('GET', `/v1/devices/cd-victim/commands/${created.body.id}`)).body).toMatchObject({ status: 'sent' });
    expect(mallory.socket.readyState).toBe(mallory.socket.OPEN);
    await mallory.close();
    victim.send(encodeResult(command.commandId, 1, 'done'));
    const settled = await hub.api('GET', `/v1/devices/cd-victim/commands/${created.body.id}?wait=20`);
    expect(settled.body).toMatchObject({ status: 'succeeded', result: 'done' });
  });

  it('its REPORTED changes its own reported state only', async () => {
    victim.send(encodeReported(new Map<string, unknown>([['fw', '1.0.0']])));
    await until(async () => ((await hub.api('GET', '/v1/devices/cd-victim/state')).body.reported.fw === '1.0.0' ? true : undefined), 20_000);
    const mallory = await TestDevice.connect(hub.deviceUrl, { id: 'cd-mallory', secret: mallorySecret });
    mallory.send(encodeReported(new Map<string, unknown>([['fw', 'evil'], ['deviceId', 'cd-victim']])));
    await until(async () => ((await hub.api('GET', '/v1/devices/cd-mallory/state')).body.reported.fw === 'evil' ? true : undefined), 20_000);
    await mallory.close();
    expect((await hub.api('GET', '/v1/devices/cd-victim/state')).body.reported).toEqual({ fw: '1.0.0' });
  });

  it('a second connection with its secret replaces only its own session (4000); the victim stays connected and served', async () => {
    const first = await TestDevice.connect(hub.deviceUrl, { id: 'cd-mallory', secret: mallorySecret });
    first.send(encodeTelemetry(10, [senmlRecord({ n: 'x', v: 1 })]));
    expect(await first.next()).toEqual({ type: 2, seq: 10 });
    const second = await TestDevice.connect(hub.deviceUrl, { id: 'cd-mallory', secret: mallorySecret });
    second.send(encodeTelemetry(11, [senmlRecord({ n: 'x', v: 2 })]));
    expect(await second.next()).toEqual({ type: 2, seq: 11 });
    expect((await first.closed).code).toBe(4000);
    await second.close();
    expect(victim.socket.readyState).toBe(victim.socket.OPEN);
    victim.send(encodeTelemetry(1, [senmlRecord({ n: 'temp', v: 21 })]));
    expect(await victim.next()).toEqual({ type: 2, seq: 1 });
    expect((await hub.api('GET', '/v1/devices/cd-victim')).body.online).toBe(true);
  });
});
