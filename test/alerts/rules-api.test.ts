/**
 * Alert rules through the operator API of a real hub (real influxd, a real
 * device socket, the live stream): the rule's life (create, read, list,
 * change, delete) with clear refusals, scopes and audit entries, the routes
 * in the OpenAPI document, and an alert firing and resolving from a device's
 * readings, seen in GET /v1/alerts, on the live stream and in InfluxDB as
 * measurement `alert`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeTelemetry } from '../../src/protocol/encode.js';
import { TestDevice } from '../support/device-client.js';
import { operatorRequest, startHub, type TestHub } from '../support/hub.js';
import { until, waitFor } from '../support/wait.js';
import { LiveClient } from '../live/live-client.js';

const rule = { name: 'boiler too hot', devices: { prefix: 'boiler-' }, series: 'temp', condition: { kind: 'above', threshold: 80, clearAt: 70 } };

describe('alert rules API', () => {
  let hub: TestHub;
  beforeAll(async () => {
    hub = await startHub();
  });
  afterAll(async () => { await hub?.close(); });

  it('create, read, list, change and delete a rule; the writes are audited', async () => {
    const created = await hub.api('POST', '/v1/rules', { ...rule, forSeconds: 30 });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    expect(created.headers.get('location')).toBe(`/v1/rules/${id}`);
    expect(created.body).toMatchObject({ ...rule, forSeconds: 30, createdAt: expect.any(String), updatedAt: created.body.createdAt });
    expect((await hub.api('GET', `/v1/rules/${id}`)).body).toEqual(created.body);
    expect((await hub.api('GET', '/v1/rules')).body.rules.map((r: { id: string }) => r.id)).toContain(id);

    const patched = await hub.api('PATCH', `/v1/rules/${id}`, { condition: { kind: 'below', threshold: 5 }, forSeconds: 0 });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ id, name: rule.name, condition: { kind: 'below', threshold: 5 }, forSeconds: 0 });
    expect(Date.parse(patched.body.updatedAt)).toBeGreaterThan(Date.parse(created.body.updatedAt));

    expect((await hub.api('DELETE', `/v1/rules/${id}`)).status).toBe(204);
    const gone = await hub.api('GET', `/v1/rules/${id}`);
    expect([gone.status, gone.body.error.code]).toEqual([404, 'PW_ERR_RULE_NOT_FOUND']);
    expect((await hub.api('DELETE', `/v1/rules/${id}`)).status).toBe(404);
    expect((await hub.api('PATCH', `/v1/rules/${id}`, { name: 'x' })).status).toBe(404);

    const audit = (await hub.api('GET', '/v1/audit?limit=50')).body.entries as { action: string; target: string; outcome: string; detail?: string }[];
    const mine = audit.filter((e) => e.target === id || e.target.startsWith(`${id}`));
    expect(mine.map((e) => [e.action, e.outcome]).sort()).toEqual([
      ['rule.create', 'ok'], ['rule.delete', 'PW_ERR_RULE_NOT_FOUND'], ['rule.delete', 'ok'], ['rule.update', 'PW_ERR_RULE_NOT_FOUND'], ['rule.update', 'ok'],
    ]);
    expect(mine.find((e) => e.action === 'rule.create')!.detail).toBe(rule.name);
  });

  it('refuses what makes no rule, with 400 and the reason', async () => {
    const refused = async (body: unknown, code: string, text: string) => {
      const res = await hub.api('POST', '/v1/rules', body);
      expect({ status: res.status, code: res.body.error.code }).toEqual({ status: 400, code });
      expect(res.body.error.message).toContain(text);
    };
    await refused({ ...rule, devices: { ids: ['a'], prefix: 'b' } }, 'PW_ERR_RULE_INVALID', 'exactly one of ids or prefix');
    await refused({ ...rule, devices: {} }, 'PW_ERR_RULE_INVALID', 'exactly one of ids or prefix');
    await refused({ ...rule, condition: { kind: 'above', threshold: 80, clearAt: 90 } }, 'PW_ERR_RULE_INVALID', 'clearAt must be at or below');
    await refused({ ...rule, condition: { kind: 'below', threshold: 10, clearAt: 5 } }, 'PW_ERR_RULE_INVALID', 'clearAt must be at or above');
    await refused({ ...rule, condition: { kind: 'stale', afterSeconds: 60 }, forSeconds: 10 }, 'PW_ERR_RULE_INVALID', 'forSeconds does not apply to stale');
    await refused({ ...rule, condition: { kind: 'stale', afterSeconds: 0 } }, 'PW_ERR_BAD_REQUEST', 'condition');
    await refused({ ...rule, condition: { kind: 'between', threshold: 1 } }, 'PW_ERR_BAD_REQUEST', 'condition');
    await refused({ ...rule, severity: 'high' }, 'PW_ERR_BAD_REQUEST', 'severity');
    await refused({ name: 'no series', devices: { prefix: '' }, condition: rule.condition }, 'PW_ERR_BAD_REQUEST', 'series');
    expect((await hub.api('GET', '/v1/rules')).body.rules.filter((r: { name: string }) => r.name === rule.name)).toEqual([]);
  });

  it('a read key lists rules and alerts but may not write them; the OpenAPI document has every route with its scope', async () => {
    const reader = (await hub.api('POST', '/v1/keys', { name: 'alerts-wallboard', scope: 'read' })).body.key as string;
    expect((await operatorRequest(hub.baseUrl, 'GET', '/v1/rules', undefined, reader)).status).toBe(200);
    expect((await operatorRequest(hub.baseUrl, 'GET', '/v1/alerts', undefined, reader)).status).toBe(200);
    const refused = await operatorRequest(hub.baseUrl, 'POST', '/v1/rules', rule, reader);
    expect([refused.status, refused.body.error.code]).toEqual([403, 'PW_ERR_SCOPE']);
    const openapi = (await (await fetch(`${hub.baseUrl}/openapi.json`)).json()) as { paths: Record<string, Record<string, { 'x-scope'?: string }>> };
    expect(openapi.paths['/v1/rules']?.post?.['x-scope']).toBe('operate');
    expect(openapi.paths['/v1/rules']?.get?.['x-scope']).toBe('read');
    expect(openapi.paths['/v1/rules/{id}']?.patch?.['x-scope']).toBe('operate');
    expect(openapi.paths['/v1/rules/{id}']?.delete?.['x-scope']).toBe('operate');
    expect(openapi.paths['/v1/alerts']?.get?.['x-scope']).toBe('read');
  });

  it("fires and resolves from a device's readings: GET /v1/alerts, the live stream and InfluxDB's `alert` measurement say so", async () => {
    const created = (await hub.api('POST', '/v1/rules', rule)).body as { id: string };
    const live = await LiveClient.connect(hub.baseUrl);
    expect((await live.next((f) => f.type === 'snapshot')).alerts).toEqual([]);
    const device = await TestDevice.connect(hub.deviceUrl, { id: 'boiler-1' });
    let seq = 0;
    const send = async (value: number) => {
      device.send(encodeTelemetry(++seq, [{ n: 'temp', u: 'Cel', v: value }]));
      expect(await device.next()).toMatchObject({ type: 2, seq });
    };
    await send(75);
    expect((await hub.api('GET', '/v1/alerts')).body.alerts).toEqual([]);
    await send(85);
    const firing = await until(async () => (await hub.api('GET', '/v1/alerts')).body.alerts[0] as Record<string, unknown> | undefined);
    const id = `${created.id}/boiler-1/temp`;
    expect(firing).toMatchObject({ id, ruleId: created.id, ruleName: rule.name, deviceId: 'boiler-1', series: 'temp', state: 'firing', value: 85 });
    expect((await hub.api('GET', '/v1/alerts?device=other')).body.alerts).toEqual([]);
    expect((await hub.api('GET', `/v1/alerts?rule=${created.id}`)).body.alerts).toHaveLength(1);
    const firedFrame = await live.next((f) => f.type === 'events' && Array.isArray(f.alerts));
    expect(firedFrame.alerts).toMatchObject([{ id, state: 'firing', value: 85 }]);

    await send(75); // between clearAt and the threshold: hysteresis keeps it firing
    await send(69);
    await waitFor(async () => (await hub.api('GET', '/v1/alerts')).body.alerts.length === 0, { what: 'alert resolved' });
    const resolvedFrame = await live.next((f) => f.type === 'events' && Array.isArray(f.alerts) && (f.alerts as { state: string }[])[0]?.state === 'resolved');
    expect(resolvedFrame.alerts).toMatchObject([{ id, state: 'resolved', value: 69, resolvedAt: expect.any(Number) }]);
    // A new stream's snapshot has no alert firing any more.
    const later = await LiveClient.connect(hub.baseUrl);
    expect((await later.next((f) => f.type === 'snapshot')).alerts).toEqual([]);
    await later.close();
    await live.close();
    await device.close();

    const rows = await until(async () => {
      const found = await hub.db.query(`SELECT "state", "value", "rule", "device", "series" FROM "alert" WHERE "device" = 'boiler-1' ORDER BY time ASC`);
      return found.length === 2 ? found : undefined;
    });
    expect(rows.map((r) => [r.state, r.value, r.rule, r.device, r.series])).toEqual([
      ['firing', 85, created.id, 'boiler-1', 'temp'],
      ['resolved', 69, created.id, 'boiler-1', 'temp'],
    ]);
  });
});
