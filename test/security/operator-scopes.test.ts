/**
 * Operator keys against a real hub: the OpenAPI document walked with a key
 * of each scope (each route allowed, or 403 naming the scope it needs, never
 * a 2xx below it); keys shown once and stored hashed; a revoked or expired key
 * refused at once, with its open live streams (WebSocket 1008, SSE's last
 * event) ended; a browser session bound to the key it was opened with.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SCOPES, scopeAllows, type Scope } from '../../src/operators/scopes.js';
import { LiveClient, SseClient, type Refusal } from '../live/live-client.js';
import { operatorRequest, startHub, type TestHub } from '../support/hub.js';
import { until } from '../support/wait.js';

type Operation = { method: string; path: string; scope: unknown; public: boolean };

/** An OpenAPI path with its parameters filled in. */
const concrete = (path: string) => path.replace(/\{[^}]+\}/g, 'scope-probe-1');

async function createKey(hub: TestHub, name: string, scope: Scope, expiresAt?: string): Promise<{ id: string; key: string }> {
  const res = await hub.api('POST', '/v1/keys', { name, scope, ...(expiresAt ? { expiresAt } : {}) });
  expect(res.status).toBe(201);
  return res.body;
}

async function login(hub: TestHub, token: string): Promise<string> {
  const res = await fetch(`${hub.baseUrl}/v1/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) });
  expect(res.status).toBe(204);
  return res.headers.get('set-cookie')!.split(';')[0]!;
}

describe('operator keys and scopes', () => {
  let hub: TestHub;
  let operations: Operation[];
  const keys = {} as Record<Scope, string>;
  beforeAll(async () => {
    hub = await startHub();
    const openapi = (await (await fetch(`${hub.baseUrl}/openapi.json`)).json()) as { paths: Record<string, Record<string, { security?: unknown[]; 'x-scope'?: unknown }>> };
    operations = Object.entries(openapi.paths).flatMap(([path, methods]) => Object.entries(methods).map(([method, op]) => ({
      method: method.toUpperCase(), path, scope: op['x-scope'], public: Array.isArray(op.security) && op.security.length === 0,
    })));
    for (const scope of SCOPES) keys[scope] = (await createKey(hub, `walker-${scope}`, scope)).key;
  });
  afterAll(async () => { await hub?.close(); });

  it('every route of the OpenAPI document states its scope, and each key is allowed at or above it and refused with 403 below', { timeout: 120_000 }, async () => {
    const guarded = operations.filter((o) => !o.public);
    expect(guarded.length).toBeGreaterThan(20);
    for (const op of guarded) expect({ route: `${op.method} ${op.path}`, scope: SCOPES.includes(op.scope as Scope) }).toEqual({ route: `${op.method} ${op.path}`, scope: true });
    // Spot checks of the mapping itself, so a route cannot slip down a scope unnoticed.
    const scopeOf = (method: string, path: string) => guarded.find((o) => o.method === method && o.path === path)?.scope;
    expect(scopeOf('GET', '/v1/devices')).toBe('read');
    expect(scopeOf('POST', '/v1/devices/{id}/commands')).toBe('operate');
    expect(scopeOf('PATCH', '/v1/devices/{id}/desired')).toBe('operate');
    expect(scopeOf('POST', '/v1/jobs')).toBe('operate');
    expect(scopeOf('PUT', '/v1/devices/{id}')).toBe('admin');
    expect(scopeOf('GET', '/v1/dead-letters')).toBe('admin');
    expect(scopeOf('POST', '/v1/keys')).toBe('admin');
    // The SSE stream never ends by itself: opened, looked at, closed.
    const openSse = async (key: string) => {
      const sse = await SseClient.open(hub.baseUrl, '', { authorization: `Bearer ${key}` });
      if (!(sse instanceof SseClient)) return { status: sse.status, body: JSON.parse(sse.body) };
      sse.close();
      return { status: 200, body: undefined };
    };
    const seen = new Set<string>();
    for (const op of guarded) {
      for (const scope of SCOPES) {
        const res = op.path === '/v1/live/sse' ? await openSse(keys[scope]) : await operatorRequest(hub.baseUrl, op.method, concrete(op.path), undefined, keys[scope]);
        const route = `${op.method} ${op.path} with ${scope}`;
        if (scopeAllows(scope, op.scope as Scope)) {
          expect({ route, refused: res.status === 401 || res.status === 403 }).toEqual({ route, refused: false });
        } else {
          expect({ route, status: res.status, code: res.body?.error?.code }).toEqual({ route, status: 403, code: 'PW_ERR_SCOPE' });
          expect(res.body.error.message).toContain(`needs scope ${String(op.scope)}`);
        }
        seen.add(`${scope}:${res.status}`);
      }
    }
    expect(guarded.some((o) => o.path === '/v1/live/sse')).toBe(true);
    // The walk reached handlers (not only refusals) for every scope.
    for (const scope of SCOPES) expect([...seen].some((s) => s.startsWith(`${scope}:2`))).toBe(true);
    // The live stream's WebSocket, not in the document, needs read: every key opens it.
    for (const scope of SCOPES) {
      const live = await LiveClient.connect(hub.baseUrl, { authorization: `Bearer ${keys[scope]}` });
      expect((await live.next()).type).toBe('hello');
      await live.close();
    }
  });

  it('a key is shown once: the list and whoami never carry the secret, and last-used-at appears once it is used', async () => {
    const created = await createKey(hub, 'shown-once', 'read');
    expect(created.key).toMatch(/^pwk_[0-9a-f]{16}_/);
    expect((await operatorRequest(hub.baseUrl, 'GET', '/v1/whoami', undefined, created.key)).body).toEqual({ id: created.id, name: 'shown-once', scope: 'read', expiresAt: null });
    const listed = await hub.api('GET', '/v1/keys');
    expect(JSON.stringify(listed.body)).not.toContain(created.key.slice(22));
    const mine = (listed.body.keys as { id: string; lastUsedAt: string | null; createdAt: string }[]).find((k) => k.id === created.id)!;
    expect(mine).toMatchObject({ scope: 'read', revokedAt: null });
    await until(async () => ((await hub.api('GET', '/v1/keys')).body.keys.find((k: { id: string }) => k.id === created.id).lastUsedAt ?? undefined));
    // The store holds a digest: nothing of the secret.
    const stored = (await hub.app.stores.apiKeys.get(created.id))!.value;
    expect(JSON.stringify(stored)).not.toContain(created.key.slice(22));
    // The bootstrap token is an admin key too.
    expect((await hub.api('GET', '/v1/whoami')).body).toMatchObject({ id: 'bootstrap', scope: 'admin' });
  });

  it('a revoked key is refused at once, its open WebSocket closed with 1008 and its SSE stream ended; other keys stream on', async () => {
    const doomed = await createKey(hub, 'doomed', 'read');
    const bearer = { authorization: `Bearer ${doomed.key}` };
    const ws = await LiveClient.connect(hub.baseUrl, bearer);
    const sse = (await SseClient.open(hub.baseUrl, '', bearer)) as SseClient;
    expect((await sse.next()).type).toBe('hello');
    const other = await LiveClient.connect(hub.baseUrl, { authorization: `Bearer ${keys.read}` });
    expect((await hub.api('DELETE', `/v1/keys/${doomed.id}`)).status).toBe(204);
    expect(await ws.closed).toMatchObject({ code: 1008, reason: expect.stringContaining('operator key revoked') });
    expect(await sse.next((f) => f.type === 'error')).toMatchObject({ code: 'PW_ERR_KEY_REVOKED' });
    const refused = await operatorRequest(hub.baseUrl, 'GET', '/v1/devices', undefined, doomed.key);
    expect([refused.status, refused.body.error.code]).toEqual([401, 'PW_ERR_KEY_REVOKED']);
    expect(((await LiveClient.connect(hub.baseUrl, bearer).catch((r: Refusal) => r)) as Refusal).status).toBe(401);
    expect(other.socket.readyState).toBe(other.socket.OPEN);
    await other.close();
    expect((await hub.api('DELETE', '/v1/keys/0000000000000000')).status).toBe(404);
  });

  it('an expired key is refused, and a stream it opened ends at its expiry', async () => {
    // The stream must be open before the key expires; a machine too busy for that gets a longer window.
    let stream: { ws: LiveClient; expiresAt: number; key: string } | undefined;
    for (const windowMs of [3000, 10_000, 30_000]) {
      const expiresAt = Date.now() + windowMs;
      const brief = await createKey(hub, `brief-${windowMs}`, 'read', new Date(expiresAt).toISOString());
      const ws = await LiveClient.connect(hub.baseUrl, { authorization: `Bearer ${brief.key}` }).catch((r: Refusal) => r);
      if (ws instanceof LiveClient) {
        stream = { ws, expiresAt, key: brief.key };
        break;
      }
      expect(ws.status).toBe(401);
    }
    expect(stream).toBeDefined();
    expect(await stream!.ws.closed).toMatchObject({ code: 1008, reason: expect.stringContaining('operator key expired') });
    expect(Date.now()).toBeGreaterThanOrEqual(stream!.expiresAt - 50);
    const refused = await operatorRequest(hub.baseUrl, 'GET', '/v1/devices', undefined, stream!.key);
    expect([refused.status, refused.body.error.code]).toEqual([401, 'PW_ERR_KEY_EXPIRED']);
    expect((await hub.api('POST', '/v1/keys', { name: 'past', scope: 'read', expiresAt: '2001-01-01T00:00:00Z' })).status).toBe(400);
  });

  it('a browser session carries its key: the scope applies, and revoking the key ends the session', async () => {
    const key = await createKey(hub, 'browser', 'read');
    const cookie = await login(hub, key.key);
    const origin = hub.baseUrl;
    expect((await fetch(`${hub.baseUrl}/v1/devices`, { headers: { cookie } })).status).toBe(200);
    const put = await fetch(`${hub.baseUrl}/v1/devices/cookie-dev-1`, { method: 'PUT', headers: { cookie, origin } });
    expect(put.status).toBe(403);
    expect(((await put.json()) as { error: { code: string } }).error.code).toBe('PW_ERR_SCOPE');
    const live = await LiveClient.connect(hub.baseUrl, { cookie, origin });
    await hub.api('DELETE', `/v1/keys/${key.id}`);
    expect((await live.closed).code).toBe(1008);
    expect((await fetch(`${hub.baseUrl}/v1/devices`, { headers: { cookie } })).status).toBe(401);
    // A revoked key cannot log in either.
    const again = await fetch(`${hub.baseUrl}/v1/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: key.key }) });
    expect(again.status).toBe(401);
  });
});
