/**
 * A device's credentials over its life, on a real hub with real sockets: a
 * secret rotated while the device is connected (closed with 4001, the
 * enrollment-derived secret ended unless kept), the grace period in which old
 * and new secrets both work (and a session on the old one closed when it
 * ends), a device disabled (1008, then 403 at the handshake, no failed-login
 * count) and enabled again with its queued command and desired state intact,
 * and enrollment under a previous enrollment key, recorded in the registry.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enrollmentKeyId } from '../../src/registry/secrets.js';
import { enrollmentSecret, TestDevice, type Refusal } from '../support/device-client.js';
import { ENROLLMENT_KEY, startHub, type TestHub } from '../support/hub.js';
import { HttpDevice } from '../support/http-device.js';

const refusal = (attempt: Promise<TestDevice>) => attempt.then(async (device) => { await device.close(); return 101; }, (r: Refusal) => r.status);

describe('device credential lifecycle', () => {
  let hub: TestHub;
  const connect = (id: string, secret: string) => TestDevice.connect(hub.deviceUrl, { id, secret });
  const status = (id: string, secret: string) => refusal(connect(id, secret));
  beforeAll(async () => { hub = await startHub(); });
  afterAll(async () => { await hub?.close(); });

  it('a rotation closes the open session with 4001 and ends the enrollment-derived secret; the new secret works', async () => {
    const enrolled = await connect('rot-1', enrollmentSecret('rot-1'));
    const rotated = await hub.api('PUT', '/v1/devices/rot-1');
    expect([rotated.status, rotated.body.rotated]).toEqual([201, true]);
    expect(await enrolled.closed).toEqual({ code: 4001, reason: 'credentials changed, authenticate again' });
    expect(await status('rot-1', enrollmentSecret('rot-1'))).toBe(401);
    expect(await status('rot-1', rotated.body.secret)).toBe(101);
    expect((await hub.api('GET', '/v1/devices/rot-1')).body.enrollmentEndsAt).not.toBeNull();
    const audit = (await hub.api('GET', '/v1/audit?target=rot-1')).body.entries as { action: string; detail: string | null }[];
    expect(audit.map((e) => [e.action, e.detail])).toEqual([['device.rotate', 'grace 0 s']]);
    // Registering a new device is no rotation: nothing to close, and enrollment keeps working for it as before.
    const created = await hub.api('PUT', '/v1/devices/rot-new');
    expect(created.body.rotated).toBe(false);
    expect(await status('rot-new', enrollmentSecret('rot-new'))).toBe(101);
  });

  it('keepEnrollment leaves the enrollment-derived secret working; the replaced registered secret stops at once', async () => {
    const first = (await hub.api('PUT', '/v1/devices/rot-2')).body.secret as string;
    const session = await connect('rot-2', first);
    const second = await hub.api('PUT', '/v1/devices/rot-2', { keepEnrollment: true });
    expect((await session.closed).code).toBe(4001);
    expect(await status('rot-2', first)).toBe(401);
    expect(await status('rot-2', second.body.secret)).toBe(101);
    expect(await status('rot-2', enrollmentSecret('rot-2'))).toBe(101);
    expect((await hub.api('PUT', '/v1/devices/rot-2', { graceS: -1 })).status).toBe(400);
    expect((await hub.api('PUT', '/v1/devices/rot-2', { keep: true })).status).toBe(400);
  });

  it('in a grace period both secrets work; a session on the old one is closed with 4001 when it ends', async () => {
    let old = (await hub.api('PUT', '/v1/devices/grace-1')).body.secret as string;
    // The session must open within the grace; a machine too busy for that gets a longer one.
    let onOld: { device: TestDevice; newer: string; graceS: number } | undefined;
    for (const graceS of [2, 10, 30]) {
      const rotated = await hub.api('PUT', '/v1/devices/grace-1', { graceS });
      const device = await connect('grace-1', old).catch((r: Refusal) => r);
      if (device instanceof TestDevice) {
        onOld = { device, newer: rotated.body.secret, graceS };
        break;
      }
      expect(device.status).toBe(401);
      old = rotated.body.secret;
    }
    expect(onOld).toBeDefined();
    expect((await hub.api('GET', '/v1/devices/grace-1')).body.previousSecretUntil).not.toBeNull();
    const closed = await onOld!.device.closed;
    expect(closed.code).toBe(4001);
    expect(closed.reason).toContain('authenticate again');
    expect(await status('grace-1', old)).toBe(401);
    expect(await status('grace-1', onOld!.newer)).toBe(101);
    // The enrollment-derived secret of an enrolled device gets the same grace.
    await status('grace-2', enrollmentSecret('grace-2'));
    await hub.api('PUT', '/v1/devices/grace-2', { graceS: 3600 });
    expect(await status('grace-2', enrollmentSecret('grace-2'))).toBe(101);
  });
});

describe('disabling a device', () => {
  let hub: TestHub;
  const connect = (id: string, secret: string) => TestDevice.connect(hub.deviceUrl, { id, secret });
  const status = (id: string, secret: string) => refusal(connect(id, secret));
  beforeAll(async () => { hub = await startHub({ PULSEWIRE_AUTH_MAX_FAILURES: '3' }); });
  afterAll(async () => { await hub?.close(); });

  it('a disabled device is closed with 1008 and refused with 403 (not counted as a failed login); enabled, it gets its queue and state', async () => {
    const secret = enrollmentSecret('dis-1');
    const device = await connect('dis-1', secret);
    const disabled = await hub.api('POST', '/v1/devices/dis-1/disable');
    expect([disabled.status, disabled.body.disabled]).toEqual([200, true]);
    expect(await device.closed).toEqual({ code: 1008, reason: 'device disabled by an operator' });
    // More attempts than PULSEWIRE_AUTH_MAX_FAILURES: each a 403, never a 429.
    for (let i = 0; i < 4; i++) expect(await status('dis-1', secret)).toBe(403);
    expect((await new HttpDevice(hub.baseUrl, 'dis-1', secret).poll()).status).toBe(403);
    // The 403 is only for the right credentials: a wrong secret learns nothing.
    expect(await status('dis-1', 'wrong-secret-wrong-secret')).toBe(401);
    // Queue and state are the operator's to change meanwhile, and are kept.
    const command = await hub.api('POST', '/v1/devices/dis-1/commands', { name: 'calibrate' });
    expect(command.status).toBe(202);
    expect((await hub.api('PATCH', '/v1/devices/dis-1/desired', { interval: 30 })).status).toBeLessThan(300);
    expect(((await hub.api('GET', '/v1/devices?disabled=true')).body.devices as { id: string }[]).map((d) => d.id)).toEqual(['dis-1']);
    expect((await hub.api('POST', '/v1/devices/dis-1/enable')).body.disabled).toBe(false);
    const back = await connect('dis-1', secret);
    const got: number[] = [];
    for (let i = 0; i < 2; i++) got.push((await back.next()).type);
    expect(got.sort()).toEqual([3, 6]);
    await back.close();
    expect((await hub.api('POST', '/v1/devices/nobody-here/disable')).status).toBe(404);
  });
});

describe('enrollment key rotation', () => {
  let hub: TestHub;
  const NEW_KEY = 'the-new-enrollment-key-0123456789';
  beforeAll(async () => { hub = await startHub({ PULSEWIRE_ENROLLMENT_KEY: `${NEW_KEY}, ${ENROLLMENT_KEY}` }); });
  afterAll(async () => { await hub?.close(); });

  it('devices are accepted under the previous key, and the registry says which key each last used', async () => {
    const onOld = await TestDevice.connect(hub.deviceUrl, { id: 'ek-1', secret: enrollmentSecret('ek-1', ENROLLMENT_KEY) });
    await onOld.close();
    expect((await hub.api('GET', '/v1/devices/ek-1')).body.enrollmentKey).toEqual({ id: enrollmentKeyId(ENROLLMENT_KEY), current: false });
    const stillOld = async () => ((await hub.api('GET', '/v1/devices?oldEnrollmentKey=true')).body.devices as { id: string }[]).map((d) => d.id);
    expect(await stillOld()).toEqual(['ek-1']);
    const onNew = await TestDevice.connect(hub.deviceUrl, { id: 'ek-1', secret: enrollmentSecret('ek-1', NEW_KEY) });
    await onNew.close();
    expect((await hub.api('GET', '/v1/devices/ek-1')).body.enrollmentKey).toEqual({ id: enrollmentKeyId(NEW_KEY), current: true });
    expect(await stillOld()).toEqual([]);
    expect(await refusal(TestDevice.connect(hub.deviceUrl, { id: 'ek-2', secret: enrollmentSecret('ek-2', 'some-other-key-0123456789') }))).toBe(401);
    // The fingerprint tells keys apart without revealing them.
    expect(JSON.stringify((await hub.api('GET', '/v1/devices/ek-1')).body)).not.toContain(NEW_KEY);
  });
});
