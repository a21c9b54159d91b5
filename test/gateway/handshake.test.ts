import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enrollmentSecret, TestDevice, type Refusal } from '../support/device-client.js';
import { startHub, type TestHub } from '../support/hub.js';

async function refusal(promise: Promise<TestDevice>): Promise<Refusal> {
  try {
    const device = await promise;
    await device.close();
  } catch (err) {
    if ((err as Refusal).status) return err as Refusal;
    throw err;
  }
  throw new Error('expected the hub to refuse the handshake');
}

describe('device handshake', () => {
  let hub: TestHub;
  beforeAll(async () => { hub = await startHub({ PULSEWIRE_AUTH_MAX_FAILURES: '50' }); });
  afterAll(async () => { await hub?.close(); });

  it('refuses a request that does not offer pulsewire.v1 with 400 naming it', async () => {
    const r = await refusal(TestDevice.connect(hub.deviceUrl, { protocols: ['mqtt'] }));
    expect(r.status).toBe(400);
    expect(r.body).toContain('pulsewire.v1');
    expect(r.body.trim().split('\n')).toHaveLength(1);
    const none = await refusal(TestDevice.connect(hub.deviceUrl, { protocols: [] }));
    expect(none.status).toBe(400);
  });

  it('selects pulsewire.v1 when offered among others', async () => {
    const device = await TestDevice.connect(hub.deviceUrl, { id: 'sub-1', protocols: ['x.v0', 'pulsewire.v1'] });
    expect(device.socket.protocol).toBe('pulsewire.v1');
    await device.close();
  });

  it('answers missing, unknown and wrong credentials with the same 401', async () => {
    const missing = await refusal(TestDevice.connect(hub.deviceUrl, { headers: { authorization: '' }, id: 'x', secret: 'y' }).catch((e) => Promise.reject(e)));
    expect(missing.status).toBe(401);
    const registered = await hub.api('PUT', '/v1/devices/known-1');
    expect(registered.status).toBe(201);
    const wrong = await refusal(TestDevice.connect(hub.deviceUrl, { id: 'known-1', secret: 'not-the-secret' }));
    const unknown = await refusal(TestDevice.connect(hub.deviceUrl, { id: 'nobody-here', secret: 'not-the-secret' }));
    for (const r of [wrong, unknown]) {
      expect(r.status).toBe(401);
      expect(r.headers['www-authenticate']).toBe('Basic realm="pulsewire"');
      expect(r.headers.connection).toBe('close');
    }
    expect(wrong.body).toBe(unknown.body);
  });

  it('accepts a registered secret', async () => {
    const { body } = await hub.api('PUT', '/v1/devices/reg-1');
    expect(body.secret.length).toBeGreaterThanOrEqual(22); // >= 128 bits in base64url
    const device = await TestDevice.connect(hub.deviceUrl, { id: 'reg-1', secret: body.secret });
    const info = await hub.api('GET', '/v1/devices/reg-1');
    expect(info.body.online).toBe(true);
    expect(info.body.provisioning).toBe('registered');
    await device.close();
  });

  it('accepts an enrollment-derived secret and registers the device on first connection', async () => {
    expect((await hub.api('GET', '/v1/devices/zt-42')).status).toBe(404);
    const device = await TestDevice.connect(hub.deviceUrl, { id: 'zt-42', secret: enrollmentSecret('zt-42') });
    const info = await hub.api('GET', '/v1/devices/zt-42');
    expect(info.status).toBe(200);
    expect(info.body.provisioning).toBe('enrollment');
    expect(info.body.online).toBe(true);
    await device.close();
    // The derived secret of another id does not open this one.
    const other = await refusal(TestDevice.connect(hub.deviceUrl, { id: 'zt-43', secret: enrollmentSecret('zt-42') }));
    expect(other.status).toBe(401);
  });
});

describe('failed attempts are rate-limited per address', () => {
  let hub: TestHub;
  beforeAll(async () => { hub = await startHub({ PULSEWIRE_AUTH_MAX_FAILURES: '3', PULSEWIRE_AUTH_BLOCK_MS: '60000' }); });
  afterAll(async () => { await hub?.close(); });

  it('answers 429 with Retry-After once an address failed too often, even with a right secret', async () => {
    for (let i = 0; i < 3; i++) {
      expect((await refusal(TestDevice.connect(hub.deviceUrl, { id: 'victim', secret: `guess-${i}` }))).status).toBe(401);
    }
    const blocked = await refusal(TestDevice.connect(hub.deviceUrl, { id: 'victim', secret: enrollmentSecret('victim') }));
    expect(blocked.status).toBe(429);
    // Seconds left of the 60 s block: 60 at once, less on a slow machine, never 0 or more.
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(blocked.headers['retry-after'])).toBeLessThanOrEqual(60);
    const metrics = await hub.api('GET', '/metrics');
    expect(metrics.body).toMatch(/pulsewire_handshake_refusals_total\{reason="PW_ERR_AUTH_RATE_LIMITED"\} 1/);
  });
});
