import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { float64 } from '../../src/protocol/cbor-encode.js';
import { encodeReported, encodeResult } from '../../src/protocol/encode.js';
import type { CommandMessage, DesiredMessage } from '../../src/protocol/messages.js';
import { TestDevice } from '../support/device-client.js';
import { freshDatabase } from '../support/influx.js';
import { restartableHub, startHub, type TestHub } from '../support/hub.js';
import { sleep, until } from '../support/wait.js';

describe('desired and reported state', () => {
  let hub: TestHub;
  beforeAll(async () => { hub = await startHub(); });
  afterAll(async () => { await hub?.close(); });

  const connect = async (id: string) => {
    const secret = (await hub.api('PUT', `/v1/devices/${id}`)).body.secret as string;
    return TestDevice.connect(hub.deviceUrl, { id, secret });
  };

  it('starts empty at version 0 and sends no DESIRED to a device that has none', async () => {
    const device = await connect('st-empty');
    const state = await hub.api('GET', '/v1/devices/st-empty/state');
    expect(state.body).toMatchObject({ deviceId: 'st-empty', reported: {}, desired: {}, version: 0, delta: {} });
    await expect(device.next(300)).rejects.toThrow(/no hub message/);
    await device.close();
  });

  it('merge-patches desired (null removes, objects merge), bumps the version and sends DESIRED at once', async () => {
    const device = await connect('st-live');
    const first = await hub.api('PATCH', '/v1/devices/st-live/desired', { interval: 30 });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ desired: { interval: 30 }, version: 1, delta: { interval: 30 } });
    const sent = (await device.next()) as DesiredMessage;
    expect(sent).toMatchObject({ type: 6, version: 1 });
    // Protocol section 7's DESIRED vector, version 1 instead of 3.
    expect(device.rawFrames.at(-1)).toBe('830601a168696e74657276616c181e');
    const second = await hub.api('PATCH', '/v1/devices/st-live/desired', { led: { color: 'red', blink: true }, interval: null });
    expect(second.body).toMatchObject({ desired: { led: { color: 'red', blink: true } }, version: 2 });
    const third = await hub.api('PATCH', '/v1/devices/st-live/desired', { led: { blink: null } });
    expect(third.body.desired).toEqual({ led: { color: 'red' } });
    expect(((await device.next()) as DesiredMessage).version).toBe(2);
    expect(((await device.next()) as DesiredMessage).version).toBe(3);
    await device.close();
  });

  it('merges REPORTED into reported state and shows the delta against desired', async () => {
    const startedMs = Date.now();
    const secret = (await hub.api('PUT', '/v1/devices/st-rep')).body.secret as string;
    expect((await hub.api('PATCH', '/v1/devices/st-rep/desired', { interval: 30, fw: '1.3.0' })).status).toBe(200);
    const device = await TestDevice.connect(hub.deviceUrl, { id: 'st-rep', secret });
    expect(((await device.next()) as DesiredMessage).version).toBe(1); // sent on connect
    device.sendHex('8205a262667765312e322e3068696e74657276616c181e'); // the REPORTED vector {fw: "1.2.0", interval: 30}
    device.send(encodeReported(new Map<string, unknown>([['uptime', 5], ['gone', 1]])));
    device.send(encodeReported(new Map<string, unknown>([['gone', null]])));
    const state = await until(async () => {
      const body = (await hub.api('GET', '/v1/devices/st-rep/state')).body;
      return body.reported.uptime === 5 && !('gone' in body.reported) ? body : undefined;
    }, 20_000);
    expect(state.reported).toEqual({ fw: '1.2.0', interval: 30, uptime: 5 });
    expect(state.delta).toEqual({ fw: '1.3.0' });
    expect(Date.parse(state.reportedAt)).toBeGreaterThanOrEqual(startedMs);
    expect(Date.parse(state.reportedAt)).toBeLessThanOrEqual(Date.now());
    await device.close();
  });

  it('keeps CBOR values whole in desired state and compares them as the device sees them', async () => {
    const device = await connect('st-cbor');
    const patched = await hub.api('PATCH', '/v1/devices/st-cbor/desired', { gain: { $float: 30 }, key: { $bytes: '-_8' }, mode: { $float: 'NaN' } });
    expect(patched.status).toBe(200);
    await device.next();
    expect(device.rawFrames.at(-1)).toContain('646761696efb403e000000000000'); // gain: float64 30.0 on the wire
    // The device applies it and reports what it has: a float 30.0, the bytes, NaN.
    device.send(encodeReported(new Map<string, unknown>([['gain', float64(30)], ['key', new Uint8Array([0xfb, 0xff])], ['mode', Number.NaN]])));
    const state = await until(async () => {
      const body = (await hub.api('GET', '/v1/devices/st-cbor/state')).body;
      return 'gain' in body.reported ? body : undefined;
    }, 20_000);
    expect(state.reported).toEqual({ gain: 30, key: { $bytes: '+/8=' }, mode: { $float: 'NaN' } });
    expect(state.delta).toEqual({});
    // An object patch replaces a CBOR value; it does not merge into its spelling.
    const replaced = await hub.api('PATCH', '/v1/devices/st-cbor/desired', { mode: { eco: true } });
    expect(replaced.body.desired.mode).toEqual({ eco: true });
    expect(replaced.body.delta).toEqual({ mode: { eco: true } });
    await device.close();
  });

  it('answers bad patches and unknown devices clearly', async () => {
    expect((await hub.api('PATCH', '/v1/devices/nobody/desired', { a: 1 })).status).toBe(404);
    expect((await hub.api('GET', '/v1/devices/nobody/state')).status).toBe(404);
    await hub.api('PUT', '/v1/devices/st-bad');
    const notObject = await hub.api('PATCH', '/v1/devices/st-bad/desired', [1, 2]);
    expect(notObject.status).toBe(400);
    const mergePatchType = await fetch(`${hub.baseUrl}/v1/devices/st-bad/desired`, {
      method: 'PATCH',
      headers: { authorization: 'Bearer test-operator-token-0123456789', 'content-type': 'application/merge-patch+json' },
      body: JSON.stringify({ mode: 'eco' }),
    });
    expect(mergePatchType.status).toBe(200);
    const big = await hub.api('PATCH', '/v1/devices/st-bad/desired', { blob: 'x'.repeat(70_000) });
    expect(big.status).toBe(400);
    expect(big.body.error.code).toBe('PW_ERR_STATE_TOO_BIG');
    expect((await hub.api('GET', '/v1/devices/st-bad/state')).body.version).toBe(1);
  });
});

describe('commands and state across a hub restart', () => {
  it('keeps queued commands, their order, desired state and version, and reported state', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'pulsewire-restart-'));
    const database = await freshDatabase('restart');
    try {
      let hub = await startHub({}, { dataDir, database });
      const secret = (await hub.api('PUT', '/v1/devices/rs-1')).body.secret as string;
      let device = await TestDevice.connect(hub.deviceUrl, { id: 'rs-1', secret });
      device.send(encodeReported(new Map([['fw', '1.0']])));
      await until(async () => ((await hub.api('GET', '/v1/devices/rs-1/state')).body.reported.fw === '1.0' ? true : undefined), 20_000);
      await device.close();
      const ids: string[] = [];
      for (const name of ['first', 'second']) ids.push((await hub.api('POST', '/v1/devices/rs-1/commands', { name })).body.id);
      const short = (await hub.api('POST', '/v1/devices/rs-1/commands', { name: 'short', ttlMs: 1500 })).body.id as string;
      await hub.api('PATCH', '/v1/devices/rs-1/desired', { interval: 10 });
      await hub.api('PATCH', '/v1/devices/rs-1/desired', { interval: 20 });
      await hub.close();
      await sleep(1600); // the short command's TTL (from before the close) runs out while the hub is down: a lower bound

      hub = await startHub({}, { dataDir, database });
      const state = (await hub.api('GET', '/v1/devices/rs-1/state')).body;
      expect(state).toMatchObject({ desired: { interval: 20 }, version: 2, reported: { fw: '1.0' }, delta: { interval: 20 } });
      expect((await hub.api('GET', `/v1/devices/rs-1/commands/${short}?wait=20`)).body.status).toBe('expired');
      device = await TestDevice.connect(hub.deviceUrl, { id: 'rs-1', secret });
      const desired = (await device.next()) as DesiredMessage;
      expect(desired).toMatchObject({ type: 6, version: 2 });
      const got = [(await device.next()) as CommandMessage, (await device.next()) as CommandMessage];
      expect(got.map((c) => c.commandId)).toEqual(ids);
      device.send(encodeResult(ids[0]!, 1));
      expect((await hub.api('GET', `/v1/devices/rs-1/commands/${ids[0]}?wait=20`)).body.status).toBe('succeeded');
      await device.close();
      await hub.close();
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('desired version of a device id across removal and restart', () => {
  it('never goes backwards: a device removed and provisioned again continues above its last version', async () => {
    const hubs = await restartableHub('desired-version');
    try {
      let hub = await hubs.start();
      await hub.api('PUT', '/v1/devices/dv-1');
      for (const interval of [10, 20, 30]) await hub.api('PATCH', '/v1/devices/dv-1/desired', { interval });
      expect((await hub.api('GET', '/v1/devices/dv-1/state')).body.version).toBe(3);
      expect((await hub.api('DELETE', '/v1/devices/dv-1')).status).toBe(204);
      await hub.close();

      hub = await hubs.start();
      const secret = (await hub.api('PUT', '/v1/devices/dv-1')).body.secret as string;
      // A fresh device: nothing desired, so nothing is sent; the next change is version 4, not 1.
      expect((await hub.api('GET', '/v1/devices/dv-1/state')).body).toMatchObject({ desired: {}, version: 0 });
      expect((await hub.api('PATCH', '/v1/devices/dv-1/desired', { interval: 5 })).body).toMatchObject({ desired: { interval: 5 }, version: 4 });
      const device = await TestDevice.connect(hub.deviceUrl, { id: 'dv-1', secret });
      expect((await device.next()) as DesiredMessage).toMatchObject({ type: 6, version: 4 });
      await device.close();

      // Removed again without a restart: the mark moves up with it.
      await hub.api('PATCH', '/v1/devices/dv-1/desired', { interval: 6 });
      expect((await hub.api('DELETE', '/v1/devices/dv-1')).status).toBe(204);
      await hub.api('PUT', '/v1/devices/dv-1');
      expect((await hub.api('PATCH', '/v1/devices/dv-1/desired', { interval: 7 })).body.version).toBe(6);
      // Other ids are not affected.
      await hub.api('PUT', '/v1/devices/dv-2');
      expect((await hub.api('PATCH', '/v1/devices/dv-2/desired', { interval: 1 })).body.version).toBe(1);
    } finally {
      await hubs.close();
    }
  });
});
