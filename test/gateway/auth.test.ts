import { createHmac } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { authenticateDevice, parseBasicAuthorization } from '../../src/gateway/auth.js';
import { DeviceRegistry } from '../../src/registry/device-registry.js';
import { LMDB, type StoresHandle } from '../support/stores.js';

const basic = (userPass: string, scheme = 'Basic') => `${scheme} ${Buffer.from(userPass, 'utf8').toString('base64')}`;

describe('parseBasicAuthorization', () => {
  it('decodes id and secret', () => {
    expect(parseBasicAuthorization(basic('dev-1:s3cret'))).toEqual({ deviceId: 'dev-1', secret: 's3cret' });
  });

  it('matches the RFC 7617 example bytes', () => {
    // RFC 7617 section 2: "Aladdin:open sesame".
    expect(parseBasicAuthorization('Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==')).toEqual({ deviceId: 'Aladdin', secret: 'open sesame' });
  });

  it('splits at the first colon, so secrets may contain colons', () => {
    expect(parseBasicAuthorization(basic('dev-1:a:b::c'))).toEqual({ deviceId: 'dev-1', secret: 'a:b::c' });
  });

  it('accepts the scheme in any case and extra spaces', () => {
    expect(parseBasicAuthorization(basic('d:s', 'basic'))?.deviceId).toBe('d');
    expect(parseBasicAuthorization(basic('d:s', 'BASIC'))?.deviceId).toBe('d');
    expect(parseBasicAuthorization(`Basic   ${Buffer.from('d:s').toString('base64')}  `)?.secret).toBe('s');
  });

  it('accepts unpadded base64 and UTF-8 secrets', () => {
    expect(parseBasicAuthorization(`Basic ${Buffer.from('d:ab').toString('base64').replace(/=+$/, '')}`)).toEqual({ deviceId: 'd', secret: 'ab' });
    expect(parseBasicAuthorization(basic('d:pässwörd'))?.secret).toBe('pässwörd');
  });

  it.each([
    ['missing header', undefined],
    ['empty header', ''],
    ['other scheme', `Bearer ${Buffer.from('d:s').toString('base64')}`],
    ['scheme only', 'Basic'],
    ['no space after scheme', `Basic${Buffer.from('d:s').toString('base64')}`],
    ['not base64', 'Basic !!!not-base64!!!'],
    ['base64url alphabet', `Basic ${Buffer.from('d:??>').toString('base64url')}`],
    ['two tokens', `Basic ${Buffer.from('d:s').toString('base64')} extra`],
    ['impossible length', 'Basic ZGVmZ'],
    ['no colon', basic('dev-1')],
    ['empty id', basic(':secret')],
    ['empty secret', basic('dev-1:')],
    ['id with a space', basic('dev 1:secret')],
    ['id with a slash', basic('a/b:secret')],
    ['id too long', basic(`${'x'.repeat(65)}:secret`)],
    ['not UTF-8', `Basic ${Buffer.from([0x64, 0x3a, 0xff, 0xfe]).toString('base64')}`],
    ['huge secret', basic(`d:${'x'.repeat(2000)}`)],
  ])('rejects %s', (_name, header) => {
    expect(parseBasicAuthorization(header)).toBeNull();
  });

  it('accepts a 64-character id', () => {
    expect(parseBasicAuthorization(basic(`${'x'.repeat(64)}:s`))?.deviceId).toHaveLength(64);
  });
});

describe('authenticateDevice', () => {
  let handle: StoresHandle;
  let registry: DeviceRegistry;
  const enrollmentKey = 'fleet-enrollment-key-2025';

  beforeEach(async () => {
    handle = await LMDB.open();
    registry = new DeviceRegistry(handle.stores);
  });

  afterEach(async () => {
    await handle.close();
  });

  /** Computed here with node:crypto, independently of src/registry/secrets.ts. */
  const derived = (deviceId: string, key = enrollmentKey) => createHmac('sha256', key).update(deviceId).digest('base64url');

  it('accepts a registered secret', async () => {
    const { secret } = await registry.register('sensor-1');
    const result = await authenticateDevice({ authorization: basic(`sensor-1:${secret}`) }, { registry });
    expect(result).toEqual({ ok: true, deviceId: 'sensor-1', method: 'secret', credentialsVersion: 0 });
  });

  it('refuses a replaced secret', async () => {
    const old = await registry.register('sensor-1');
    await registry.register('sensor-1');
    const result = await authenticateDevice({ authorization: basic(`sensor-1:${old.secret}`) }, { registry });
    expect(result.ok).toBe(false);
  });

  it('gives an unknown device and a wrong secret the identical error', async () => {
    await registry.register('sensor-1');
    const wrong = await authenticateDevice({ authorization: basic('sensor-1:nope') }, { registry, enrollmentKeys: [enrollmentKey] });
    const unknown = await authenticateDevice({ authorization: basic('ghost:nope') }, { registry, enrollmentKeys: [enrollmentKey] });
    const malformed = await authenticateDevice({ authorization: 'Basic ???' }, { registry, enrollmentKeys: [enrollmentKey] });
    const missing = await authenticateDevice({}, { registry, enrollmentKeys: [enrollmentKey] });
    for (const result of [wrong, unknown, malformed, missing]) {
      expect(result.ok).toBe(false);
      if (result.ok) continue;
      expect(result.error.code).toBe('PW_ERR_DEVICE_AUTH');
      expect(result.error.message).toBe('unknown device or wrong secret');
      expect(result.error.detail).toBeUndefined();
      expect(result.error.spec.http).toBe(401);
    }
    // Nothing was provisioned by a failed attempt.
    expect(await registry.get('ghost')).toBeUndefined();
  });

  it('provisions a device presenting the secret derived from the enrollment key (fixed vector)', async () => {
    // Fixed vector, so firmware teams can check their implementation against docs.
    expect(derived('sensor-001', 'fleet-enrollment-key-2025')).toBe(
      createHmac('sha256', Buffer.from('fleet-enrollment-key-2025', 'utf8')).update(Buffer.from('sensor-001', 'utf8')).digest('base64').replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_'),
    );
    const secret = derived('sensor-001');
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const result = await authenticateDevice({ authorization: basic(`sensor-001:${secret}`) }, { registry, enrollmentKeys: [enrollmentKey] });
    expect(result).toEqual({ ok: true, deviceId: 'sensor-001', method: 'enrollment', credentialsVersion: 0 });
    expect((await registry.get('sensor-001'))?.provisioning).toBe('enrollment');
    // Second connection: still accepted, not re-created.
    const again = await authenticateDevice({ authorization: basic(`sensor-001:${secret}`) }, { registry, enrollmentKeys: [enrollmentKey] });
    expect(again.ok).toBe(true);
  });

  it('refuses derived secrets without an enrollment key, for another id, or with padding', async () => {
    const secret = derived('sensor-001');
    const noKey = await authenticateDevice({ authorization: basic(`sensor-001:${secret}`) }, { registry });
    const emptyKey = await authenticateDevice({ authorization: basic(`sensor-001:${derived('sensor-001', '')}`) }, { registry, enrollmentKeys: [''] });
    const otherId = await authenticateDevice({ authorization: basic(`sensor-002:${secret}`) }, { registry, enrollmentKeys: [enrollmentKey] });
    const padded = await authenticateDevice({ authorization: basic(`sensor-001:${secret}=`) }, { registry, enrollmentKeys: [enrollmentKey] });
    const otherKey = await authenticateDevice({ authorization: basic(`sensor-001:${derived('sensor-001', 'other')}`) }, { registry, enrollmentKeys: [enrollmentKey] });
    expect([noKey, emptyKey, otherId, padded, otherKey].map((r) => r.ok)).toEqual([false, false, false, false, false]);
    expect((await registry.list({ limit: 10 })).devices).toEqual([]);
  });

  it('refuses a removed enrolled device even with the right derived secret, until re-registered', async () => {
    const secret = derived('sensor-001');
    const auth = () => authenticateDevice({ authorization: basic(`sensor-001:${secret}`) }, { registry, enrollmentKeys: [enrollmentKey] });
    expect((await auth()).ok).toBe(true);
    expect(await registry.remove('sensor-001')).toBe(true);
    const refused = await auth();
    expect(refused.ok).toBe(false);
    if (!refused.ok) expect(refused.error.code).toBe('PW_ERR_DEVICE_AUTH');
    expect(await registry.get('sensor-001')).toBeUndefined();

    const { secret: fresh } = await registry.register('sensor-001');
    expect(await authenticateDevice({ authorization: basic(`sensor-001:${fresh}`) }, { registry, enrollmentKeys: [enrollmentKey] })).toEqual({
      ok: true, deviceId: 'sensor-001', method: 'secret', credentialsVersion: 0,
    });
  });

  it('accepts a verified client certificate whose CN is a device id, provisioning it', async () => {
    const result = await authenticateDevice({ certificate: { authorized: true, subjectCN: 'cam-7' } }, { registry });
    expect(result).toEqual({ ok: true, deviceId: 'cam-7', method: 'certificate', credentialsVersion: 0 });
    expect((await registry.get('cam-7'))?.provisioning).toBe('certificate');
  });

  it('prefers the certificate over Basic credentials', async () => {
    const result = await authenticateDevice(
      { certificate: { authorized: true, subjectCN: 'cam-7' }, authorization: basic('other:wrong') },
      { registry },
    );
    expect(result).toEqual({ ok: true, deviceId: 'cam-7', method: 'certificate', credentialsVersion: 0 });
  });

  it('ignores unverified certificates and CNs that are not device ids, falling back to Basic', async () => {
    const { secret } = await registry.register('sensor-1');
    const unverified = await authenticateDevice({ certificate: { authorized: false, subjectCN: 'cam-7' } }, { registry });
    const badCn = await authenticateDevice({ certificate: { authorized: true, subjectCN: 'cam 7.example.com/x' } }, { registry });
    const noCn = await authenticateDevice({ certificate: { authorized: true } }, { registry });
    expect([unverified.ok, badCn.ok, noCn.ok]).toEqual([false, false, false]);
    expect(await registry.get('cam-7')).toBeUndefined();
    const fallback = await authenticateDevice(
      { certificate: { authorized: false, subjectCN: 'cam-7' }, authorization: basic(`sensor-1:${secret}`) },
      { registry },
    );
    expect(fallback).toEqual({ ok: true, deviceId: 'sensor-1', method: 'secret', credentialsVersion: 0 });
  });

  it('refuses a removed certificate device', async () => {
    await authenticateDevice({ certificate: { authorized: true, subjectCN: 'cam-7' } }, { registry });
    await registry.remove('cam-7');
    const result = await authenticateDevice({ certificate: { authorized: true, subjectCN: 'cam-7' } }, { registry });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error.code).toBe('PW_ERR_DEVICE_AUTH');
  });
});
