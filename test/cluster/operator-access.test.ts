/**
 * Operator keys, the audit log and device credentials across two nodes of one
 * cluster (real nats-server, JetStream stores): a key made on one node works
 * on the other, and revoked there it is refused at once on both, with the
 * live stream it holds on the other node closed; a device held by one node
 * is closed with 4001 when rotated, and with 1008 when disabled, through the
 * other; the audit log is one log, whichever node answered.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LiveClient } from '../live/live-client.js';
import { enrollmentSecret, TestDevice, type Refusal } from '../support/device-client.js';
import { operatorRequest, startHub, type TestHub } from '../support/hub.js';
import { startTwoNodes } from '../support/two-nodes.js';

describe('operator access on two nodes of one cluster', () => {
  const hubs: TestHub[] = [];
  let a: TestHub;
  let b: TestHub;

  beforeAll(async () => {
    [a, b] = await startTwoNodes(hubs, 'op');
  });
  afterAll(async () => {
    for (const hub of hubs.reverse()) await hub.close();
  });

  it('a key created on one node works on the other; revoked there, it is refused on both and its stream on the other node is closed', async () => {
    const created = await a.api('POST', '/v1/keys', { name: 'cluster-reader', scope: 'read' });
    expect(created.status).toBe(201);
    expect((await operatorRequest(b.baseUrl, 'GET', '/v1/devices', undefined, created.body.key)).status).toBe(200);
    const live = await LiveClient.connect(b.baseUrl, { authorization: `Bearer ${created.body.key}` });
    expect((await live.next()).type).toBe('hello');
    expect((await a.api('DELETE', `/v1/keys/${created.body.id}`)).status).toBe(204);
    expect((await live.closed).code).toBe(1008);
    for (const hub of [a, b]) {
      const res = await operatorRequest(hub.baseUrl, 'GET', '/v1/devices', undefined, created.body.key);
      expect([res.status, res.body.error.code]).toEqual([401, 'PW_ERR_KEY_REVOKED']);
    }
  });

  it('a device on one node is closed with 4001 when rotated through the other, and with 1008 when disabled; 403 on both then', async () => {
    const onB = await TestDevice.connect(b.deviceUrl, { id: 'cl-rot-1' });
    const rotated = await a.api('PUT', '/v1/devices/cl-rot-1');
    expect(rotated.body.rotated).toBe(true);
    expect((await onB.closed).code).toBe(4001);
    const again = await TestDevice.connect(b.deviceUrl, { id: 'cl-rot-1', secret: rotated.body.secret });
    expect((await a.api('POST', '/v1/devices/cl-rot-1/disable')).status).toBe(200);
    expect(await again.closed).toEqual({ code: 1008, reason: 'device disabled by an operator' });
    for (const hub of [a, b]) {
      const refused = await TestDevice.connect(hub.deviceUrl, { id: 'cl-rot-1', secret: rotated.body.secret }).then(() => 101, (r: Refusal) => r.status);
      expect(refused).toBe(403);
    }
    // The enrollment-derived secret ended with the rotation: 401, not 403.
    expect(await TestDevice.connect(a.deviceUrl, { id: 'cl-rot-1', secret: enrollmentSecret('cl-rot-1') }).then(() => 101, (r: Refusal) => r.status)).toBe(401);
  });

  it('the audit log is shared: entries made through either node are listed by both', async () => {
    await b.api('PUT', '/v1/devices/cl-audit-1');
    await a.api('POST', '/v1/devices/cl-audit-1/disable');
    for (const hub of [a, b]) {
      const entries = (await hub.api('GET', '/v1/audit?target=cl-audit-1')).body.entries as { action: string }[];
      expect(entries.map((e) => e.action)).toEqual(['device.disable', 'device.register']);
    }
  });
});
