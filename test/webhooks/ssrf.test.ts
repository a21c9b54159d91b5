/**
 * Server-side request forgery, both ways, on a hub with the default policy:
 * - at registration: URLs whose host is or resolves to loopback, private,
 *   link-local or metadata addresses are refused with the address named;
 * - at delivery: a name that resolved to a public address at registration
 *   and to 127.0.0.1 afterwards (DNS rebinding) is not connected to: the
 *   loopback receiver listening there gets nothing, and the event ends in
 *   the failed list saying why.
 * Name resolution is the hub's injectable `resolve` (no DNS server in tests);
 * the check itself is the one every delivery goes through.
 */
import type { LookupAddress } from 'node:dns';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDevice } from '../support/device-client.js';
import { startHub, type TestHub } from '../support/hub.js';
import { sleep, until } from '../support/wait.js';
import { Receiver } from './receiver.js';

describe('webhook SSRF refusals', () => {
  let hub: TestHub;
  let receiver: Receiver;
  let rebound = false;
  const resolve = async (host: string): Promise<LookupAddress[]> => {
    if (host === 'metadata.test') return [{ address: '169.254.169.254', family: 4 }];
    if (host === 'rebind.test') return [{ address: rebound ? '127.0.0.1' : '93.184.216.34', family: 4 }];
    throw Object.assign(new Error(`${host} unknown`), { code: 'ENOTFOUND' });
  };

  beforeAll(async () => {
    receiver = await Receiver.start();
    hub = await startHub({ PULSEWIRE_WEBHOOK_RETRY_FOR_MS: '300', PULSEWIRE_WEBHOOK_BACKOFF_MS: '50', PULSEWIRE_WEBHOOK_BACKOFF_MAX_MS: '100' }, { webhooks: { resolve } });
  });
  afterAll(async () => {
    await hub?.close();
    await receiver?.close();
  });

  it('refuses loopback, private, link-local and metadata endpoints at registration, naming the address', async () => {
    for (const [url, address] of [
      [receiver.url, '127.0.0.1'],
      ['http://10.0.0.7/hook', '10.0.0.7'],
      ['http://[::1]:9000/hook', '::1'],
      ['http://[::ffff:127.0.0.1]/hook', '::ffff:7f00:1'],
      ['http://169.254.169.254/latest/meta-data/', '169.254.169.254'],
      ['https://metadata.test/computeMetadata/v1/', '169.254.169.254'],
    ] as const) {
      const res = await hub.api('POST', '/v1/webhooks', { url, events: ['device.online'] });
      expect(res.status, url).toBe(400);
      expect(res.body.error.code, url).toBe('PW_ERR_WEBHOOK_ADDRESS_REFUSED');
      expect(res.body.error.message, url).toContain(address);
    }
    expect((await hub.api('POST', '/v1/webhooks', { url: 'https://nowhere.test/', events: ['device.online'] })).body.error.code).toBe('PW_ERR_WEBHOOK_URL');
    expect((await hub.api('GET', '/v1/webhooks')).body.webhooks).toEqual([]);
  });

  it('refuses a PATCH to a private URL', async () => {
    const created = await hub.api('POST', '/v1/webhooks', { url: 'https://rebind.test/x', events: ['job.finished'] });
    expect(created.status).toBe(201);
    const patched = await hub.api('PATCH', `/v1/webhooks/${created.body.id}`, { url: 'http://192.168.1.10/' });
    expect(patched.body.error.code).toBe('PW_ERR_WEBHOOK_ADDRESS_REFUSED');
    expect((await hub.api('GET', `/v1/webhooks/${created.body.id}`)).body.url).toBe('https://rebind.test/x');
    await hub.api('DELETE', `/v1/webhooks/${created.body.id}`);
  });

  it('refuses at delivery a name that resolves to loopback by then (DNS rebinding)', async () => {
    const created = await hub.api('POST', '/v1/webhooks', { url: `http://rebind.test:${receiver.port}/hook`, events: ['device.online'] });
    expect(created.status).toBe(201);
    rebound = true;
    const device = await TestDevice.connect(hub.deviceUrl, { id: 'rebind-1' });
    const failed = await until(async () => (await hub.api('GET', `/v1/webhooks/${created.body.id}/failed`)).body.events[0]);
    await device.close();
    expect(failed.event.type).toBe('device.online');
    expect(failed.reason).toMatch(/address refused: rebind\.test resolves to 127\.0\.0\.1/);
    await sleep(200);
    expect(receiver.arrived).toBe(0);
  });
});
