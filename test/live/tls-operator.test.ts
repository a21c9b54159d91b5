/**
 * The operator side of a hub that serves TLS, through real sockets (not
 * app.inject): login over https sets a `Secure` session cookie, the cookie
 * reads the API and opens the live stream over wss and SSE over https, a
 * change by cookie needs the https origin (the scheme counts), logout ends
 * the session, and the port speaks no plain HTTP.
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeTelemetry } from '../../src/protocol/encode.js';
import { senmlRecord } from '../../src/protocol/senml-labels.js';
import { makeTestPki, type TestPki } from '../support/certs.js';
import { TestDevice } from '../support/device-client.js';
import { httpsRequest, type HttpsAnswer, type Refused } from '../support/https-client.js';
import { LiveClient, SseClient } from './live-client.js';
import { OPERATOR_TOKEN, startHub, type TestHub } from '../support/hub.js';

const SESSION_COOKIE = /^pulsewire_session=([^;]+); HttpOnly; SameSite=Strict; Path=\/; Max-Age=43200; Secure$/;

describe('operator side over TLS', () => {
  let pki: TestPki;
  let hub: TestHub;
  let origin: string;
  const request = (route: string, opts: { method?: string; headers?: Record<string, string>; body?: unknown } = {}): Promise<HttpsAnswer> =>
    httpsRequest(`${hub.baseUrl}${route}`, { ca: pki.ca, ...opts });
  const login = async (): Promise<string> => {
    const res = await request('/v1/login', { method: 'POST', body: { token: OPERATOR_TOKEN } });
    expect(res.status).toBe(204);
    return String(res.headers['set-cookie']).split(';')[0]!;
  };

  beforeAll(async () => {
    pki = makeTestPki();
    hub = await startHub({ PULSEWIRE_TLS_CERT: pki.files.serverCert, PULSEWIRE_TLS_KEY: pki.files.serverKey });
    expect(hub.baseUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    origin = hub.baseUrl;
  });
  afterAll(async () => { await hub?.close(); });

  it('login over https sets an HttpOnly, SameSite=Strict, Secure cookie that is not the token; a wrong token gets 401 and none', async () => {
    const res = await request('/v1/login', { method: 'POST', body: { token: OPERATOR_TOKEN } });
    expect(res.status).toBe(204);
    const cookies = res.headers['set-cookie']!;
    expect(cookies).toHaveLength(1);
    expect(cookies[0]).toMatch(SESSION_COOKIE);
    expect(cookies[0]).not.toContain(OPERATOR_TOKEN);

    const wrong = await request('/v1/login', { method: 'POST', body: { token: 'wrong-token-wrong-token' } });
    expect(wrong.status).toBe(401);
    expect(wrong.headers['set-cookie']).toBeUndefined();
    expect(wrong.json.error.code).toBe('PW_ERR_OPERATOR_AUTH');
  });

  it('the cookie reads the API over https; a change by cookie needs the https origin, not the http one', async () => {
    const cookie = await login();
    const devices = await request('/v1/devices', { headers: { cookie } });
    expect(devices.status).toBe(200);
    expect(Array.isArray(devices.json.devices)).toBe(true);
    const anonymous = await request('/v1/devices');
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers['www-authenticate']).toBe('Bearer realm="pulsewire-operator"');

    const plainOrigin = origin.replace(/^https:/, 'http:');
    const downgraded = await request('/v1/devices/tls-put', { method: 'PUT', headers: { cookie, origin: plainOrigin } });
    expect(downgraded.status).toBe(403);
    expect(downgraded.json.error.code).toBe('PW_ERR_ORIGIN');
    const created = await request('/v1/devices/tls-put', { method: 'PUT', headers: { cookie, origin } });
    expect(created.status).toBe(201);
    expect(created.json.secret).toMatch(/\S{16,}/);
    // The bearer token works over https too.
    expect((await request('/v1/devices/tls-put', { headers: { authorization: `Bearer ${OPERATOR_TOKEN}` } })).json.id).toBe('tls-put');
  });

  it('the cookie opens the live stream over wss, which carries a reading a device sent over wss', async () => {
    const cookie = await login();
    const live = await LiveClient.connect(hub.baseUrl, { cookie, origin }, { ca: pki.ca });
    try {
      expect(await live.next()).toMatchObject({ type: 'hello', version: 1 });
      expect((await live.next()).type).toBe('snapshot');
      const tS = Math.floor(Date.now() / 1000) - 60;
      const device = await TestDevice.connect(hub.deviceUrl, { id: 'tls-live', tls: { ca: pki.ca } });
      device.send(encodeTelemetry(1, [senmlRecord({ n: 'temp', u: 'Cel', v: 21.5, t: tS })]));
      expect(await device.next()).toEqual({ type: 2, seq: 1 });
      const events = await live.next((f) => f.type === 'events' && (f.readings ?? []).some((r: { device: string }) => r.device === 'tls-live'));
      expect(events.readings.filter((r: { device: string }) => r.device === 'tls-live'))
        .toEqual([{ device: 'tls-live', name: 'temp', unit: 'Cel', t: tS * 1000, kind: 'value', v: 21.5 }]);
      await device.close();
    } finally {
      await live.close();
    }
    for (const wrong of ['https://evil.example', origin.replace(/^https:/, 'http:')]) {
      const refused = await LiveClient.connect(hub.baseUrl, { cookie, origin: wrong }, { ca: pki.ca }).then(
        () => { throw new Error(`origin ${wrong} was let in`); }, (r: Refused) => r,
      );
      expect([wrong, refused.status, JSON.parse(refused.body).error.code]).toEqual([wrong, 403, 'PW_ERR_ORIGIN']);
    }
  });

  it('the cookie opens the SSE stream over https', async () => {
    const cookie = await login();
    const sse = await SseClient.open(hub.baseUrl, '', { cookie, origin }, { ca: pki.ca }) as SseClient;
    try {
      expect(await sse.next()).toMatchObject({ type: 'hello', version: 1 });
      expect((await sse.next()).type).toBe('snapshot');
    } finally {
      sse.close();
    }
  });

  it('logout over https clears the cookie (Secure) and the old value stops working', async () => {
    const cookie = await login();
    expect((await request('/v1/devices', { headers: { cookie } })).status).toBe(200);
    const out = await request('/v1/logout', { method: 'POST', headers: { cookie, origin } });
    expect(out.status).toBe(204);
    expect(out.headers['set-cookie']).toEqual(['pulsewire_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0; Secure']);
    expect((await request('/v1/devices', { headers: { cookie } })).status).toBe(401);
    const refused = await LiveClient.connect(hub.baseUrl, { cookie, origin }, { ca: pki.ca }).then(() => undefined, (r: Refused) => r);
    expect(refused?.status).toBe(401);
  });

  it('answers no plain HTTP on its port: the token cannot travel in clear text', async () => {
    const plain = new Promise<number | string>((resolve) => {
      const req = http.get(`${hub.baseUrl.replace(/^https:/, 'http:')}/v1/devices`, { headers: { authorization: `Bearer ${OPERATOR_TOKEN}` } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    });
    expect(await plain).toBe('ECONNRESET');
  });
});
