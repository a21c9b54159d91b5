/**
 * A fault of the hub while it handles one device's message ends that
 * device's session with 1011 and nothing else: the hub and the other devices
 * carry on. The faults are injected by replacing one service method of a
 * real hub (the command service, the intake), as a bug there would behave.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeResult, encodeTelemetry } from '../../src/protocol/encode.js';
import { senmlRecord } from '../../src/protocol/senml-labels.js';
import { TestDevice } from '../support/device-client.js';
import { startHub, type TestHub } from '../support/hub.js';
import { until } from '../support/wait.js';

describe('internal errors with a device session', () => {
  let hub: TestHub;
  beforeAll(async () => { hub = await startHub(); });
  afterAll(async () => { await hub?.close(); });

  it('a handler that throws closes only that device with 1011 "hub internal error"; another device is served', async () => {
    const bystander = await TestDevice.connect(hub.deviceUrl, { id: 'bystander-1' });
    const commands = hub.app.commands as { onResult: (...args: unknown[]) => void };
    const original = commands.onResult;
    commands.onResult = () => { throw new Error('injected fault with a secret detail'); };
    try {
      const victim = await TestDevice.connect(hub.deviceUrl, { id: 'victim-1' });
      victim.send(encodeResult('c-1', 1));
      // The device learns that the hub failed, not how.
      expect(await victim.closed).toEqual({ code: 1011, reason: 'hub internal error' });
    } finally {
      commands.onResult = original;
    }
    bystander.send(encodeTelemetry(1, [senmlRecord({ n: 'still', v: 1 })]));
    expect(await bystander.next()).toEqual({ type: 2, seq: 1 });
    await bystander.close();
    const victim = await until(async () => {
      const body = (await hub.api('GET', '/v1/devices/victim-1')).body;
      return body.online === false ? body : undefined;
    });
    expect(victim.offlineReason).toBe('error');
    expect((await hub.app.metricsText()).text).toMatch(/pulsewire_frames_rejected_total\{code="PW_ERR_INTERNAL"\} 1/);
  });

  it('a TELEMETRY whose handling fails gets no ACK and 1011; resent after reconnecting it is stored', async () => {
    const intake = hub.app.gateway.intake as { accept: (...args: unknown[]) => Promise<unknown> };
    const accept = intake.accept;
    intake.accept = () => Promise.reject(new Error('injected storage bug'));
    const frame = encodeTelemetry(7, [senmlRecord({ n: 'kept', v: 7 })]);
    try {
      const device = await TestDevice.connect(hub.deviceUrl, { id: 'victim-2' });
      device.send(frame);
      expect((await device.closed).code).toBe(1011);
    } finally {
      intake.accept = accept;
    }
    const again = await TestDevice.connect(hub.deviceUrl, { id: 'victim-2' });
    again.send(frame);
    expect(await again.next()).toEqual({ type: 2, seq: 7 });
    await again.close();
  });
});
