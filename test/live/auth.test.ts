import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { restartableHub, startHub, OPERATOR_TOKEN, type TestHub } from '../support/hub.js';
import { LiveClient, SseClient, type Refusal } from './live-client.js';

async function login(hub: TestHub, token: string, headers: Record<string, string> = {}) {
  return fetch(`${hub.baseUrl}/v1/login`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ token }) });
}

async function sessionCookie(hub: TestHub): Promise<string> {
  const res = await login(hub, OPERATOR_TOKEN);
  expect(res.status).toBe(204);
  return res.headers.get('set-cookie')!.split(';')[0]!;
}

const refusal = (promise: Promise<unknown>) => promise.then(() => { throw new Error('expected a refusal'); }, (r: Refusal) => r);

describe('operator credentials and origins', () => {
  let hub: TestHub;
  let ownOrigin: string;
  beforeAll(async () => {
    hub = await startHub();
    ownOrigin = hub.baseUrl;
  });
  afterAll(async () => { await hub?.close(); });

  it('login sets an HttpOnly, SameSite=Strict session cookie that is not the token', async () => {
    const res = await login(hub, OPERATOR_TOKEN);
    expect(res.status).toBe(204);
    const cookie = res.headers.get('set-cookie')!;
    expect(cookie).toMatch(/^pulsewire_session=[^;]+; HttpOnly; SameSite=Strict; Path=\/; Max-Age=\d+$/);
    expect(cookie).not.toContain(OPERATOR_TOKEN);
    expect(cookie).not.toContain('Secure');
  });

  it('login with a wrong token is 401 and sets no cookie', async () => {
    const res = await login(hub, 'wrong-token-wrong-token');
    expect(res.status).toBe(401);
    expect(res.headers.get('set-cookie')).toBeNull();
    expect(((await res.json()) as any).error.code).toBe('PW_ERR_OPERATOR_AUTH');
  });

  it('a session cookie opens the live stream and reads operator endpoints', async () => {
    const cookie = await sessionCookie(hub);
    const live = await LiveClient.connect(hub.baseUrl, { cookie, origin: ownOrigin });
    expect((await live.next()).type).toBe('hello');
    await live.close();
    const res = await fetch(`${hub.baseUrl}/v1/devices`, { headers: { cookie } });
    expect(res.status).toBe(200);
  });

  it('a change made by cookie needs an allowed Origin (CSRF)', async () => {
    const cookie = await sessionCookie(hub);
    const put = (headers: Record<string, string>) => fetch(`${hub.baseUrl}/v1/devices/csrf-1`, { method: 'PUT', headers: { cookie, ...headers } });
    const missing = await put({});
    expect(missing.status).toBe(403);
    expect(((await missing.json()) as any).error.code).toBe('PW_ERR_ORIGIN');
    expect((await put({ origin: 'https://evil.example' })).status).toBe(403);
    expect((await put({ origin: ownOrigin })).status).toBe(201);
    // The bearer header is not sent by browsers on their own, so it needs no Origin.
    expect((await hub.api('PUT', '/v1/devices/csrf-2')).status).toBe(201);
  });

  it('logout clears the cookie and the old session stops working', async () => {
    const cookie = await sessionCookie(hub);
    const res = await fetch(`${hub.baseUrl}/v1/logout`, { method: 'POST', headers: { cookie, origin: ownOrigin } });
    expect(res.status).toBe(204);
    expect(res.headers.get('set-cookie')).toMatch(/^pulsewire_session=; .*Max-Age=0/);
    expect((await fetch(`${hub.baseUrl}/v1/devices`, { headers: { cookie } })).status).toBe(401);
    expect((await refusal(LiveClient.connect(hub.baseUrl, { cookie, origin: ownOrigin }))).status).toBe(401);
  });

  it('refuses the upgrade with 401 without credentials, with a wrong token, a forged cookie or a token in the URL', async () => {
    for (const headers of <Record<string, string>[]>[{}, { authorization: 'Bearer wrong-token-wrong-token' }, { cookie: 'pulsewire_session=1.AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }]) {
      const r = await refusal(LiveClient.connect(hub.baseUrl, headers));
      expect(r.status).toBe(401);
      expect(JSON.parse(r.body).error.code).toBe('PW_ERR_OPERATOR_AUTH');
    }
    const inUrl = await fetch(`${hub.baseUrl}/v1/live/sse?token=${OPERATOR_TOKEN}`);
    expect(inUrl.status).toBe(401);
  });

  it('refuses a foreign Origin with 403 before the upgrade, even with valid credentials', async () => {
    const cookie = await sessionCookie(hub);
    for (const headers of <Record<string, string>[]>[{ cookie, origin: 'https://evil.example' }, { authorization: `Bearer ${OPERATOR_TOKEN}`, origin: 'http://127.0.0.1:1' }]) {
      const r = await refusal(LiveClient.connect(hub.baseUrl, headers));
      expect(r.status).toBe(403);
      expect(JSON.parse(r.body).error.code).toBe('PW_ERR_ORIGIN');
    }
    const sse = (await SseClient.open(hub.baseUrl, '', { cookie, origin: 'https://evil.example' })) as Refusal;
    expect(sse.status).toBe(403);
    const noCredentials = (await SseClient.open(hub.baseUrl, '', {})) as Refusal;
    expect(noCredentials.status).toBe(401);
  });
});

describe('login guessing', () => {
  let hub: TestHub;
  beforeAll(async () => {
    hub = await startHub({ PULSEWIRE_AUTH_MAX_FAILURES: '3' });
  });
  afterAll(async () => { await hub?.close(); });

  it('answers 429 with Retry-After once an address failed too often, even with the right token', async () => {
    for (let i = 0; i < 3; i++) expect((await login(hub, `wrong-token-${i}-0123456789`)).status).toBe(401);
    const blocked = await login(hub, OPERATOR_TOKEN);
    expect(blocked.status).toBe(429);
    // Seconds left of the default 60 s block: 60 at once, less on a slow machine, never 0 or more.
    expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(Number(blocked.headers.get('retry-after'))).toBeLessThanOrEqual(60);
    expect(blocked.headers.get('set-cookie')).toBeNull();
  });
});

describe('PULSEWIRE_ALLOWED_ORIGINS', () => {
  let hub: TestHub;
  beforeAll(async () => {
    hub = await startHub({ PULSEWIRE_ALLOWED_ORIGINS: 'https://ops.example.com, http://localhost:5173' });
  });
  afterAll(async () => { await hub?.close(); });

  it('lets the listed origins in and no others, the hub’s own included', async () => {
    const cookie = await sessionCookie(hub);
    for (const origin of ['https://ops.example.com', 'http://localhost:5173']) {
      const live = await LiveClient.connect(hub.baseUrl, { cookie, origin });
      await live.close();
    }
    expect((await refusal(LiveClient.connect(hub.baseUrl, { cookie, origin: hub.baseUrl }))).status).toBe(403);
  });
});

describe('logout across a restart', () => {
  let hubs: Awaited<ReturnType<typeof restartableHub>> | undefined;
  afterAll(async () => { await hubs?.close(); });

  it('a logged-out session stays dead after the hub restarts; another session lives on', async () => {
    hubs = await restartableHub('logout');
    const first = await hubs.start();
    const loggedOut = await sessionCookie(first);
    const kept = await sessionCookie(first);
    expect((await fetch(`${first.baseUrl}/v1/logout`, { method: 'POST', headers: { cookie: loggedOut, origin: first.baseUrl } })).status).toBe(204);
    await first.close();

    const second = await hubs.start();
    expect((await fetch(`${second.baseUrl}/v1/devices`, { headers: { cookie: loggedOut } })).status).toBe(401);
    expect((await fetch(`${second.baseUrl}/v1/devices`, { headers: { cookie: kept } })).status).toBe(200);
  });
});
