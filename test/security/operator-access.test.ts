/**
 * Who may reach what, tried as an attacker would: every operator route
 * without credentials, the token where it must not work (in the URL, as
 * Basic credentials, as a cookie), device and operator credentials swapped,
 * the operator's session cookie riding a cross-site device connection, and
 * login from a foreign page. Each is refused.
 *
 * The session cookie's attributes behind a proxy that terminates TLS are
 * tried here (Secure only when a trusted proxy says https: an untrusted
 * connection cannot claim it, fastify's GHSA-444r-cwp2-x5xf).
 *
 * Tried elsewhere, and listed with these in SECURITY.md: the session cookie's
 * HttpOnly, SameSite=Strict (and Secure over TLS), a cookie-authenticated
 * change without an allowed Origin (CSRF), cross-site WebSocket hijacking
 * and SSE from a foreign Origin on /v1/live, logout that sticks across a
 * restart, login guessing (test/live/auth.test.ts, test/live/tls-operator.test.ts);
 * device secrets and the enrollment key (test/gateway/auth.test.ts,
 * test/gateway/auth-limiter.test.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OPERATOR_TOKEN, startHub, type TestHub } from '../support/hub.js';
import { basic } from '../support/http-device.js';
import { RawWebSocket } from '../support/raw-websocket.js';

/** One request with exactly these headers (no bearer token added). */
async function call(hub: TestHub, method: string, route: string, headers: Record<string, string> = {}): Promise<{ status: number; code: string | undefined; headers: Headers }> {
  const res = await fetch(`${hub.baseUrl}${route}`, { method, headers });
  const text = await res.text();
  let code: string | undefined;
  try { code = JSON.parse(text)?.error?.code; } catch { /* not JSON */ }
  return { status: res.status, code, headers: res.headers };
}

/** An OpenAPI path with its parameters filled in. */
const concrete = (path: string) => path.replace(/\{[^}]+\}/g, 'sec-probe-1');

async function upgrade(hub: TestHub, path: string, headers: Record<string, string>): Promise<number> {
  const { hostname, port } = new URL(hub.baseUrl);
  const ws = await RawWebSocket.connect(hostname, Number(port), path, headers);
  ws.close();
  return ws.status;
}

async function sessionCookie(hub: TestHub): Promise<string> {
  const res = await fetch(`${hub.baseUrl}/v1/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: OPERATOR_TOKEN }) });
  expect(res.status).toBe(204);
  return res.headers.get('set-cookie')!.split(';')[0]!;
}

describe('operator endpoints and credentials', () => {
  let hub: TestHub;
  let operations: Array<{ method: string; path: string; public: boolean }>;
  beforeAll(async () => {
    hub = await startHub();
    // The description is public (it holds no data); each operation says whether it needs the token.
    const res = await fetch(`${hub.baseUrl}/openapi.json`);
    expect(res.status).toBe(200);
    const openapi = (await res.json()) as { paths: Record<string, Record<string, { security?: unknown[] }>> };
    operations = Object.entries(openapi.paths).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, op]) => ({ method: method.toUpperCase(), path, public: Array.isArray(op.security) && op.security.length === 0 })));
  });
  afterAll(async () => { await hub?.close(); });

  it('every route the OpenAPI description lists refuses a request without credentials with 401, but login, logout and the two probes', async () => {
    expect(operations.length).toBeGreaterThan(20);
    expect(operations.filter((o) => o.public).map((o) => `${o.method} ${o.path}`).sort()).toEqual(['GET /healthz', 'GET /readyz', 'POST /v1/login', 'POST /v1/logout']);
    for (const op of operations.filter((o) => !o.public)) {
      const res = await call(hub, op.method, concrete(op.path));
      expect({ route: `${op.method} ${op.path}`, status: res.status, code: res.code }).toEqual({ route: `${op.method} ${op.path}`, status: 401, code: 'PW_ERR_OPERATOR_AUTH' });
      expect(res.headers.get('www-authenticate')).toBe('Bearer realm="pulsewire-operator"');
    }
    // Not in the description, guarded all the same: the live stream.
    expect((await call(hub, 'GET', '/v1/live/sse')).status).toBe(401);
    expect(await upgrade(hub, '/v1/live', {})).toBe(401);
  });

  it('the token in the URL authenticates nothing: API routes, /metrics, the live stream over WebSocket and SSE', async () => {
    const queries = [`token=${OPERATOR_TOKEN}`, `access_token=${OPERATOR_TOKEN}`, `authorization=Bearer%20${OPERATOR_TOKEN}`];
    for (const query of queries) {
      for (const op of operations.filter((o) => !o.public && o.method === 'GET')) {
        expect({ route: op.path, query, status: (await call(hub, 'GET', `${concrete(op.path)}?${query}`)).status }).toEqual({ route: op.path, query, status: 401 });
      }
      expect((await call(hub, 'GET', `/v1/live/sse?${query}`)).status).toBe(401);
      expect(await upgrade(hub, `/v1/live?${query}`, {})).toBe(401);
    }
    // The same requests with the header are let in: what is refused above is where the token was put.
    expect((await call(hub, 'GET', '/metrics', { authorization: `Bearer ${OPERATOR_TOKEN}` })).status).toBe(200);
  });

  it('the token works only as a bearer header: not as Basic credentials, not as the session cookie', async () => {
    for (const headers of <Record<string, string>[]>[
      { authorization: basic('operator', OPERATOR_TOKEN) },
      { authorization: `Basic ${Buffer.from(`:${OPERATOR_TOKEN}`).toString('base64')}` },
      { authorization: OPERATOR_TOKEN },
      { cookie: `pulsewire_session=${OPERATOR_TOKEN}` },
    ]) {
      expect((await call(hub, 'GET', '/v1/devices', headers)).status).toBe(401);
    }
  });

  it('device and operator credentials do not cross: the operator token opens no device connection, a device secret no operator route', async () => {
    const registered = await hub.api('PUT', '/v1/devices/sec-dev-1');
    expect(registered.status).toBe(201);
    const secret = registered.body.secret as string;
    const device = { 'Sec-WebSocket-Protocol': 'pulsewire.v1' };
    expect(await upgrade(hub, '/v1/device', { ...device, authorization: `Bearer ${OPERATOR_TOKEN}` })).toBe(401);
    expect(await upgrade(hub, '/v1/device', { ...device, authorization: basic('sec-dev-1', OPERATOR_TOKEN) })).toBe(401);
    expect((await call(hub, 'POST', '/v1/device/messages', { authorization: `Bearer ${OPERATOR_TOKEN}`, 'content-type': 'application/cbor' })).status).toBe(401);
    // Device credentials in the URL are not read either (protocol section 2: the Authorization header).
    expect(await upgrade(hub, `/v1/device?id=sec-dev-1&secret=${secret}`, device)).toBe(401);
    expect((await call(hub, 'GET', '/v1/devices', { authorization: basic('sec-dev-1', secret) })).status).toBe(401);
    expect((await call(hub, 'GET', '/v1/devices', { authorization: `Bearer ${secret}` })).status).toBe(401);
    // Control: the secret is right where it belongs.
    expect(await upgrade(hub, '/v1/device', { ...device, authorization: basic('sec-dev-1', secret) })).toBe(101);
  });

  it('a foreign page cannot ride the operator\'s session onto /v1/device (cross-site WebSocket hijacking): the cookie is no device credential', async () => {
    const cookie = await sessionCookie(hub);
    expect(await upgrade(hub, '/v1/device', { 'Sec-WebSocket-Protocol': 'pulsewire.v1', cookie, origin: 'https://evil.example' })).toBe(401);
    // Nor onto /v1/live, which the cookie does open from the hub's own page.
    expect(await upgrade(hub, '/v1/live', { cookie, origin: 'https://evil.example' })).toBe(403);
    expect(await upgrade(hub, '/v1/live', { cookie, origin: hub.baseUrl })).toBe(101);
  });

  it('a foreign page cannot log the browser in or out (login CSRF), even with the right token', async () => {
    const login = await fetch(`${hub.baseUrl}/v1/login`, {
      method: 'POST', headers: { 'content-type': 'application/json', origin: 'https://evil.example' }, body: JSON.stringify({ token: OPERATOR_TOKEN }),
    });
    expect(login.status).toBe(403);
    expect(login.headers.get('set-cookie')).toBeNull();
    const cookie = await sessionCookie(hub);
    const logout = await call(hub, 'POST', '/v1/logout', { cookie, origin: 'https://evil.example' });
    expect(logout.status).toBe(403);
    expect(logout.headers.get('set-cookie')).toBeNull();
    expect((await call(hub, 'GET', '/v1/devices', { cookie })).status).toBe(200);
  });
});

describe('the session cookie behind a proxy that terminates TLS', () => {
  const COOKIE = /^pulsewire_session=[^;]+; HttpOnly; SameSite=Strict; Path=\/; Max-Age=\d+(; Secure)?$/;
  let behindProxy: TestHub;
  let otherProxy: TestHub;
  beforeAll(async () => {
    // The test's requests come from 127.0.0.1: the proxy the first hub trusts, not the second's.
    behindProxy = await startHub({ PULSEWIRE_TRUST_PROXY: '127.0.0.1' });
    otherProxy = await startHub({ PULSEWIRE_TRUST_PROXY: '10.0.0.5' });
  });
  afterAll(async () => {
    await behindProxy?.close();
    await otherProxy?.close();
  });

  const login = (hub: TestHub, headers: Record<string, string>) => fetch(`${hub.baseUrl}/v1/login`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ token: OPERATOR_TOKEN }),
  });

  it('is HttpOnly, SameSite=Strict, Path=/ and Secure when the trusted proxy says https; its logout clears it with Secure', async () => {
    const host = new URL(behindProxy.baseUrl).host;
    const res = await login(behindProxy, { 'x-forwarded-proto': 'https', origin: `https://${host}` });
    expect(res.status).toBe(204);
    const cookie = res.headers.get('set-cookie')!;
    expect(cookie).toMatch(COOKIE);
    expect(cookie.endsWith('; Secure')).toBe(true);
    // Behind TLS the page's origin is https://: the plain-http one is now foreign.
    expect((await login(behindProxy, { 'x-forwarded-proto': 'https', origin: `http://${host}` })).status).toBe(403);
    const out = await call(behindProxy, 'POST', '/v1/logout', { cookie: cookie.split(';')[0]!, 'x-forwarded-proto': 'https', origin: `https://${host}` });
    expect(out.status).toBe(204);
    expect(out.headers.get('set-cookie')).toBe('pulsewire_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0; Secure');
  });

  it('is not Secure for plain http through the same proxy', async () => {
    const res = await login(behindProxy, { 'x-forwarded-proto': 'http' });
    expect(res.status).toBe(204);
    expect(res.headers.get('set-cookie')).toMatch(COOKIE);
    expect(res.headers.get('set-cookie')).not.toContain('Secure');
  });

  it('a client that is not the trusted proxy cannot claim https: no Secure, and an https Origin is foreign', async () => {
    const host = new URL(otherProxy.baseUrl).host;
    const res = await login(otherProxy, { 'x-forwarded-proto': 'https' });
    expect(res.status).toBe(204);
    expect(res.headers.get('set-cookie')).toMatch(COOKIE);
    expect(res.headers.get('set-cookie')).not.toContain('Secure');
    expect((await login(otherProxy, { 'x-forwarded-proto': 'https', origin: `https://${host}` })).status).toBe(403);
    expect((await login(otherProxy, { 'x-forwarded-proto': 'https', origin: `http://${host}` })).status).toBe(204);
  });
});
