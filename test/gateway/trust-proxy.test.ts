/**
 * PULSEWIRE_TRUST_PROXY: behind a load balancer every connection comes from
 * the balancer, so the client's address (failed-login limits, presence, logs)
 * comes from X-Forwarded-For, but only when the peer is a proxy the operator
 * named. Without the setting, a client cannot pick its own address.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDevice } from '../support/device-client.js';
import { startHub, type TestHub } from '../support/hub.js';
import { waitFor } from '../support/wait.js';

describe('PULSEWIRE_TRUST_PROXY', () => {
  let trusting: TestHub;
  let plain: TestHub;
  beforeAll(async () => {
    trusting = await startHub({ PULSEWIRE_TRUST_PROXY: '127.0.0.1' });
    plain = await startHub();
  });
  afterAll(async () => {
    await trusting.close();
    await plain.close();
  });

  const addressSeen = async (hub: TestHub, id: string): Promise<string> => {
    const device = await TestDevice.connect(hub.deviceUrl, { id, headers: { 'x-forwarded-for': '198.51.100.7, 127.0.0.1' } });
    let address = '';
    await waitFor(async () => {
      const view = (await hub.api('GET', `/v1/devices/${id}`)).body;
      address = view.remoteAddress;
      return view.online === true;
    }, { what: `${id} online` });
    await device.close();
    return address;
  };

  it('takes the client address from X-Forwarded-For sent by a trusted proxy', async () => {
    expect(await addressSeen(trusting, 'proxied-1')).toBe('198.51.100.7');
  });

  it('ignores X-Forwarded-For when no proxy is trusted', async () => {
    expect(await addressSeen(plain, 'proxied-2')).toBe('127.0.0.1');
  });
});
