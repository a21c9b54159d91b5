/**
 * A real delivery from a real hub to a loopback receiver, verified with the
 * snippet docs/webhooks.md publishes (extracted from the page and run as it
 * is), plus the API around it: the secret shown once, the audit entries, the
 * OpenAPI document, validation errors and the scope.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDevice } from '../support/device-client.js';
import { startHub, type TestHub } from '../support/hub.js';
import { until, waitFor } from '../support/wait.js';
import { Receiver } from './receiver.js';

type Verify = (secret: string, header: string | undefined, raw: Buffer | string, toleranceS?: number, nowMs?: number) => boolean;

/** The code block after `<!-- verify-snippet -->` in docs/webhooks.md, imported as a module. */
async function documentedVerifier(dir: string): Promise<Verify> {
  const page = readFileSync(new URL('../../docs/webhooks.md', import.meta.url), 'utf8');
  const match = /<!-- verify-snippet -->\s*```js\n([\s\S]*?)```/.exec(page);
  expect(match, 'docs/webhooks.md has the verify snippet').not.toBeNull();
  const file = path.join(dir, 'verify.mjs');
  await writeFile(file, match![1]!);
  const module = (await import(pathToFileURL(file).href)) as { verifyPulsewireSignature: Verify };
  return module.verifyPulsewireSignature;
}

describe('webhook signatures and the endpoint API', () => {
  let hub: TestHub;
  let receiver: Receiver;
  let dir: string;
  let verify: Verify;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pulsewire-webhook-doc-'));
    verify = await documentedVerifier(dir);
    receiver = await Receiver.start();
    hub = await startHub({ PULSEWIRE_WEBHOOK_ALLOW_PRIVATE: 'true' });
  });
  afterAll(async () => {
    await hub?.close();
    await receiver?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('delivers a signed event that the documented snippet verifies, and refuses it tampered, re-signed with another secret, or too old', async () => {
    const created = await hub.api('POST', '/v1/webhooks', { url: receiver.url, events: ['device.online', 'device.offline'], devicePrefix: 'sig-' });
    expect(created.status).toBe(201);
    const { id, secret } = created.body;
    expect(secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(created.body).toMatchObject({ url: receiver.url, events: ['device.online', 'device.offline'], devicePrefix: 'sig-', paused: false, queued: 0 });

    // The secret is shown once: never again in a read.
    const read = await hub.api('GET', `/v1/webhooks/${id}`);
    expect(read.status).toBe(200);
    expect(JSON.stringify(read.body)).not.toContain(secret);
    expect(JSON.stringify((await hub.api('GET', '/v1/webhooks')).body)).not.toContain(secret);

    const other = await TestDevice.connect(hub.deviceUrl, { id: 'other-1' });
    const device = await TestDevice.connect(hub.deviceUrl, { id: 'sig-1' });
    const delivery = await until(() => receiver.received.find((r) => r.event.type === 'device.online'));
    await device.close();
    await other.close();
    await waitFor(() => receiver.received.some((r) => r.event.type === 'device.offline'), { what: 'device.offline delivered' });

    // Only the filtered device's events came.
    expect(receiver.received.every((r) => r.event.data.deviceId === 'sig-1')).toBe(true);
    expect(delivery.event).toMatchObject({ type: 'device.online', data: { deviceId: 'sig-1', method: expect.any(String) } });
    expect(delivery.event.id).toMatch(/^evt_[0-9a-f]{24}$/);
    expect(Date.parse(delivery.event.time)).not.toBeNaN();
    expect(delivery.headers['content-type']).toBe('application/json');
    expect(delivery.headers['pulsewire-event-id']).toBe(delivery.event.id);
    expect(delivery.headers['pulsewire-event-type']).toBe('device.online');
    const offline = receiver.received.find((r) => r.event.type === 'device.offline')!;
    expect(offline.event.data).toMatchObject({ deviceId: 'sig-1', reason: 'closed by device' });

    const header = delivery.headers['pulsewire-signature'] as string;
    expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(verify(secret, header, delivery.raw)).toBe(true);
    expect(verify(secret, header, delivery.raw.toString('utf8'))).toBe(true);
    const tampered = Buffer.from(delivery.raw.toString('utf8').replace('sig-1', 'sig-2'));
    expect(verify(secret, header, tampered)).toBe(false);
    expect(verify(`${secret}x`, header, delivery.raw)).toBe(false);
    expect(verify(secret, undefined, delivery.raw)).toBe(false);
    const t = Number(/t=(\d+)/.exec(header)![1]);
    expect(verify(secret, header, delivery.raw, 300, (t + 301) * 1000)).toBe(false);
    expect(verify(secret, header, delivery.raw, 300, (t + 299) * 1000)).toBe(true);
  });

  it('audits registration, changes and deletion, and lists them in the OpenAPI document with their scope', async () => {
    const created = await hub.api('POST', '/v1/webhooks', { url: receiver.url, events: ['job.finished'], description: 'audit me' });
    expect(created.status).toBe(201);
    const { id } = created.body;
    const patched = await hub.api('PATCH', `/v1/webhooks/${id}`, { events: ['job.finished', 'command.final'], description: null });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ events: ['job.finished', 'command.final'], description: null });
    expect((await hub.api('POST', `/v1/webhooks/${id}/pause`)).body).toMatchObject({ paused: true, pausedReason: 'by an operator' });
    expect((await hub.api('POST', `/v1/webhooks/${id}/resume`)).body).toMatchObject({ paused: false, pausedReason: null });
    expect((await hub.api('DELETE', `/v1/webhooks/${id}`)).status).toBe(204);
    expect((await hub.api('GET', `/v1/webhooks/${id}`)).body.error.code).toBe('PW_ERR_WEBHOOK_NOT_FOUND');

    const audit = await hub.api('GET', '/v1/audit?limit=50');
    const actions = audit.body.entries.filter((e: { target: string }) => e.target === id).map((e: { action: string }) => e.action);
    expect(actions.sort()).toEqual(['webhook.create', 'webhook.delete', 'webhook.pause', 'webhook.resume', 'webhook.update']);
    // The destination is recorded by its origin, never its path (a receiver's URL may hold its token).
    const createEntry = audit.body.entries.find((e: { target: string; action: string }) => e.target === id && e.action === 'webhook.create');
    expect(createEntry.detail).toBe(new URL(receiver.url).origin);
    expect(JSON.stringify(audit.body)).not.toContain('/hook');

    const openapi = await hub.api('GET', '/openapi.json');
    const paths = openapi.body.paths;
    for (const [route, method] of [
      ['/v1/webhooks', 'post'], ['/v1/webhooks', 'get'], ['/v1/webhooks/{id}', 'get'], ['/v1/webhooks/{id}', 'patch'], ['/v1/webhooks/{id}', 'delete'],
      ['/v1/webhooks/{id}/pause', 'post'], ['/v1/webhooks/{id}/resume', 'post'], ['/v1/webhooks/{id}/failed', 'get'], ['/v1/webhooks/{id}/replay', 'post'],
    ] as const) {
      expect(paths[route]?.[method], `${method} ${route}`).toBeDefined();
      expect(paths[route][method]['x-scope']).toBe('admin');
    }
  });

  it('refuses bad registrations with a reason, and keys below admin', async () => {
    const bad = await hub.api('POST', '/v1/webhooks', { url: receiver.url, events: ['device.exploded'] });
    expect(bad.status).toBe(400);
    expect((await hub.api('POST', '/v1/webhooks', { url: 'ftp://example.com/x', events: ['device.online'] })).body.error.code).toBe('PW_ERR_WEBHOOK_URL');
    expect((await hub.api('POST', '/v1/webhooks', { url: receiver.url, events: [] })).status).toBe(400);
    expect((await hub.api('POST', '/v1/webhooks', { url: receiver.url, events: ['device.online'], secret: 'mine' })).status).toBe(400);
    const key = await hub.api('POST', '/v1/keys', { name: 'ops', scope: 'operate' });
    const refused = await hub.api('POST', '/v1/webhooks', { url: receiver.url, events: ['device.online'] }, key.body.key);
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('PW_ERR_SCOPE');
  });
});
