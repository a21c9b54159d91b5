import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestPki, type TestPki } from '../support/certs.js';
import { enrollmentSecret, TestDevice, type Refusal } from '../support/device-client.js';
import { startHub, type TestHub } from '../support/hub.js';

describe('wss with client certificates', () => {
  let pki: TestPki;
  let hub: TestHub;
  beforeAll(async () => {
    pki = makeTestPki();
    hub = await startHub({ PULSEWIRE_TLS_CERT: pki.files.serverCert, PULSEWIRE_TLS_KEY: pki.files.serverKey, PULSEWIRE_TLS_CA: pki.files.ca });
  });
  afterAll(async () => { await hub?.close(); });

  it('serves wss', () => {
    expect(hub.deviceUrl).toMatch(/^wss:\/\/127\.0\.0\.1:\d+\/v1\/device$/);
  });

  it('authenticates a device by a verified certificate whose CN is its id, without a secret', async () => {
    const device = await TestDevice.connect(hub.deviceUrl, { tls: { ca: pki.ca, ...pki.client('cert-dev-1') } });
    const info = await hub.api('GET', '/v1/devices/cert-dev-1');
    expect(info.body).toMatchObject({ online: true, provisioning: 'certificate' });
    await device.close();
  });

  it('refuses a certificate from an untrusted CA with 401', async () => {
    const attempt = TestDevice.connect(hub.deviceUrl, { tls: { ca: pki.ca, ...pki.client('cert-dev-2', false) } });
    await expect(attempt).rejects.toMatchObject({ status: 401 } satisfies Partial<Refusal>);
  });

  it('still accepts secrets over wss from devices without a certificate', async () => {
    const device = await TestDevice.connect(hub.deviceUrl, { id: 'pw-dev-1', secret: enrollmentSecret('pw-dev-1'), tls: { ca: pki.ca } });
    expect(device.socket.protocol).toBe('pulsewire.v1');
    await device.close();
  });
});
