import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDevice, type Refusal } from '../support/device-client.js';
import { startHub, type TestHub } from '../support/hub.js';

async function refusal(url: string): Promise<Refusal> {
  try {
    const device = await TestDevice.connect(url, { id: 'lost-1' });
    const closed = await (device.close(), device.closed);
    throw new Error(`upgraded (then closed ${closed.code}) instead of refused`);
  } catch (err) {
    if ((err as Refusal).status) return err as Refusal;
    throw err;
  }
}

describe('WebSocket upgrades to a path with no socket behind it', () => {
  let hub: TestHub;
  beforeAll(async () => { hub = await startHub(); });
  afterAll(async () => { await hub?.close(); });

  it('are refused with 404 before the upgrade, naming the device path, whether or not an HTTP route matches', async () => {
    // "/" is the dashboard page and "/readyz" a health route: both used to upgrade, then close with 1005.
    for (const path of ['/', '/readyz', '/v1/devices', '/no/such/path', '/v1/device/']) {
      const r = await refusal(`${hub.baseUrl.replace('http', 'ws')}${path}`);
      expect(r.status, path).toBe(404);
      expect(r.body, path).toContain('/v1/device');
      expect(r.headers.connection, path).toBe('close');
    }
    const metrics = await hub.app.metricsText();
    expect(metrics.text).toMatch(/pulsewire_handshake_refusals_total\{reason="PW_ERR_NO_SOCKET_HERE"\} 5/);
  });

  it('leaves the device path and ordinary requests to the same paths alone', async () => {
    const device = await TestDevice.connect(hub.deviceUrl, { id: 'found-1' });
    expect(device.socket.protocol).toBe('pulsewire.v1');
    await device.close();
    const page = await fetch(`${hub.baseUrl}/readyz`);
    expect(page.status).not.toBe(404);
  });
});
