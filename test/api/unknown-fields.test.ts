/**
 * Bad input gets a clear error (issue 6): a body field or query parameter a
 * route's schema does not declare is a 400 PW_ERR_BAD_REQUEST naming it,
 * not silently dropped (fastify's default ajv `removeAdditional`), so
 * `{name, ttlms: 5}` is not a command with the default TTL. Real hub; each
 * refused request is paired with the same request spelt right, which works.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OPERATOR_TOKEN, startHub, type TestHub } from '../support/hub.js';

describe('unknown fields and query parameters', () => {
  let hub: TestHub;
  beforeAll(async () => {
    hub = await startHub();
    for (const id of ['uf-1', 'uf-2']) expect((await hub.api('PUT', `/v1/devices/${id}`)).status).toBe(201);
  });
  afterAll(async () => { await hub?.close(); });

  const refused = (r: { status: number; body: any }, message: string) => {
    expect(r.status).toBe(400);
    expect(r.body.error).toEqual({ code: 'PW_ERR_BAD_REQUEST', message });
  };

  it('POST /v1/devices/:id/commands: a misspelt ttlMs is refused, naming it and the known fields, and nothing is queued', async () => {
    refused(
      await hub.api('POST', '/v1/devices/uf-1/commands', { name: 'reboot', ttlms: 5 }),
      'body has an unknown field "ttlms" (known: name, args, ttlMs, timeoutMs)',
    );
    expect((await hub.api('GET', '/v1/devices/uf-1/commands')).body.commands).toEqual([]);
    const right = await hub.api('POST', '/v1/devices/uf-1/commands', { name: 'reboot', ttlMs: 5000 });
    expect(right.status).toBe(202);
    expect(right.body.ttlMs).toBe(5000);
    // `args` is free-form: whatever it holds is the command's, not a schema field.
    expect((await hub.api('POST', '/v1/devices/uf-1/commands', { name: 'set', args: { anything: 1, ttlms: 2 } })).status).toBe(202);
  });

  it('command reads and lists: an unknown query parameter is refused', async () => {
    const { body: created } = await hub.api('POST', '/v1/devices/uf-2/commands', { name: 'ping' });
    refused(await hub.api('GET', `/v1/devices/uf-2/commands/${created.id}?wiat=1`), 'querystring has an unknown query parameter "wiat" (known: wait)');
    expect((await hub.api('GET', `/v1/devices/uf-2/commands/${created.id}?wait=0`)).status).toBe(200);
    refused(await hub.api('GET', '/v1/devices/uf-2/commands?state=queued'), 'querystring has an unknown query parameter "state" (known: status, limit)');
    expect((await hub.api('GET', '/v1/devices/uf-2/commands?status=queued&limit=5')).body.commands).toHaveLength(1);
  });

  it('POST /v1/jobs: unknown fields at the top, in target and in command are refused, and no job is created', async () => {
    const job = { command: { name: 'reboot' }, target: { ids: ['uf-1'] } };
    refused(await hub.api('POST', '/v1/jobs', { ...job, rollout: 5 }), 'body has an unknown field "rollout" (known: command, target, rolloutPerSecond, abortThresholdPct, abortMinFinished)');
    refused(await hub.api('POST', '/v1/jobs', { ...job, target: { idz: ['uf-1'] } }), 'body/target has an unknown field "idz" (known: ids, prefix, onlineOnly)');
    refused(await hub.api('POST', '/v1/jobs', { ...job, command: { name: 'reboot', timeout: 5 } }), 'body/command has an unknown field "timeout" (known: name, args, ttlMs, timeoutMs)');
    expect((await hub.api('GET', '/v1/jobs')).body.jobs).toEqual([]);
    refused(await hub.api('GET', '/v1/jobs?state=completed'), 'querystring has an unknown query parameter "state" (known: status, limit)');
    expect((await hub.api('POST', '/v1/jobs', { ...job, rolloutPerSecond: 5 })).status).toBe(201);
  });

  it('devices, series, telemetry and dead-letter queries refuse a misspelt parameter and take the right one', async () => {
    refused(await hub.api('GET', '/v1/devices?onlin=true'), 'querystring has an unknown query parameter "onlin" (known: limit, cursor, online, prefix, oldEnrollmentKey, disabled)');
    expect((await hub.api('GET', '/v1/devices?online=false&prefix=uf-&limit=10')).body.devices.map((d: { id: string }) => d.id)).toEqual(['uf-1', 'uf-2']);
    refused(await hub.api('GET', '/v1/devices/uf-1/series?from=0'), 'querystring has an unknown query parameter "from" (known: since)');
    expect((await hub.api('GET', '/v1/devices/uf-1/series?since=0')).status).toBe(200);
    refused(
      await hub.api('GET', '/v1/devices/uf-1/telemetry?name=temp&aggregate=max'),
      'querystring has an unknown query parameter "aggregate" (known: name, from, to, every, agg, field)',
    );
    expect((await hub.api('GET', '/v1/devices/uf-1/telemetry?name=temp&agg=max')).status).toBe(200);
    refused(await hub.api('GET', '/v1/dead-letters?page=2'), 'querystring has an unknown query parameter "page" (known: limit, cursor)');
    expect((await hub.api('GET', '/v1/dead-letters?limit=1')).status).toBe(200);
  });

  it('login refuses an unknown field; the desired state stays a free-form document', async () => {
    const login = (body: unknown) => fetch(`${hub.baseUrl}/v1/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const wrong = await login({ token: OPERATOR_TOKEN, remember: true });
    refused({ status: wrong.status, body: await wrong.json() }, 'body has an unknown field "remember" (known: token)');
    expect((await login({ token: OPERATOR_TOKEN })).status).toBe(204);
    const patched = await hub.api('PATCH', '/v1/devices/uf-1/desired', { anyKey: { nested: true }, ttlms: 1 });
    expect(patched.status).toBe(200);
    expect(patched.body.desired).toEqual({ anyKey: { nested: true }, ttlms: 1 });
  });
});
