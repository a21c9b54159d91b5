/**
 * The browser security headers of api/security-headers.ts (helmet):
 * on the page, its assets, the operator API's JSON (answers and refusals),
 * the SSE stream and unknown paths; not on device routes; HSTS only with TLS.
 * Then in a real Chromium: the page works under its policy with no
 * violation (as in test/dashboard/e2e.test.ts), and the policy is in force:
 * an injected inline script does not run and is reported, and another page
 * cannot frame the dashboard.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, logIn, watchContentSecurityPolicy, type PolicyViolations } from '../support/browser.js';
import { makeTestPki } from '../support/certs.js';
import { basic } from '../support/http-device.js';
import { OPERATOR_TOKEN, startHub, type TestHub } from '../support/hub.js';
import { RawWebSocket } from '../support/raw-websocket.js';
import { SseClient } from '../live/live-client.js';

const BROWSER_HEADERS = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

function expectBrowserHeaders(headers: Headers, what: string): void {
  for (const [name, value] of Object.entries(BROWSER_HEADERS)) expect(headers.get(name), `${what}: ${name}`).toBe(value);
  const csp = headers.get('content-security-policy') ?? '';
  for (const directive of ["default-src 'self'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'", "object-src 'none'", "base-uri 'none'"]) {
    expect(csp, `${what}: content-security-policy`).toContain(directive);
  }
  expect(csp, what).not.toContain('upgrade-insecure-requests');
  expect(headers.get('strict-transport-security'), `${what}: no HSTS over plain HTTP`).toBeNull();
}

describe('security headers', () => {
  let hub: TestHub;
  beforeAll(async () => { hub = await startHub(); });
  afterAll(async () => { await hub?.close(); });

  it('the page, its assets, the API (answers and refusals), the SSE stream and unknown paths carry them; the API still answers JSON', async () => {
    const page = await fetch(`${hub.baseUrl}/`);
    expect(page.status).toBe(200);
    const html = await page.text();
    expectBrowserHeaders(page.headers, 'GET /');
    const script = /<script[^>]+src="([^"]+)"/.exec(html)![1]!;
    const asset = await fetch(`${hub.baseUrl}${script}`);
    expect(asset.status).toBe(200);
    expect((await asset.text()).length).toBeGreaterThan(0);
    expectBrowserHeaders(asset.headers, script);

    const api = await hub.api('GET', '/v1/devices');
    expect(api.status).toBe(200);
    expect(api.headers.get('content-type')).toMatch(/^application\/json/);
    expect(api.body).toEqual({ devices: [], nextCursor: null });
    expectBrowserHeaders(api.headers, 'GET /v1/devices');
    const refused = await fetch(`${hub.baseUrl}/v1/devices`);
    expect(refused.status).toBe(401);
    expect(((await refused.json()) as any).error.code).toBe('PW_ERR_OPERATOR_AUTH');
    expectBrowserHeaders(refused.headers, 'GET /v1/devices without a token');
    const missing = await fetch(`${hub.baseUrl}/no/such/page`);
    expect(missing.status).toBe(404);
    await missing.arrayBuffer();
    expectBrowserHeaders(missing.headers, 'an unknown path');

    const sse = await SseClient.open(hub.baseUrl);
    if (!(sse instanceof SseClient)) throw new Error(`SSE refused: ${sse.status}`);
    try {
      expect(sse.response.headers['content-type']).toMatch(/^text\/event-stream/);
      expectBrowserHeaders(new Headers(sse.response.headers as Record<string, string>), 'GET /v1/live/sse');
      expect((await sse.next()).type).toBe('hello');
    } finally {
      sse.close();
    }
  });

  it('the live stream still upgrades, and device routes go without them (a device reads none, and pays for every byte)', async () => {
    const { hostname, port } = new URL(hub.baseUrl);
    const live = await RawWebSocket.connect(hostname, Number(port), '/v1/live', { authorization: `Bearer ${OPERATOR_TOKEN}` });
    expect(live.status).toBe(101);
    live.close();
    const device = await RawWebSocket.connect(hostname, Number(port), '/v1/device', { 'Sec-WebSocket-Protocol': 'pulsewire.v1', authorization: basic('hdr-1', 'wrong-secret') });
    expect(device.status).toBe(401);
    expect(device.headers['content-security-policy']).toBeUndefined();
    expect(device.headers['x-frame-options']).toBeUndefined();
    device.close();
    const fallback = await fetch(`${hub.baseUrl}/v1/device/messages`, { method: 'POST', headers: { authorization: basic('hdr-1', 'wrong-secret'), 'content-type': 'application/cbor' }, body: new Uint8Array([0x80]) });
    expect(fallback.status).toBe(401);
    expect(fallback.headers.get('content-security-policy')).toBeNull();
  });

  it('a hub serving TLS adds Strict-Transport-Security for its own name only (no includeSubDomains)', async () => {
    const pki = makeTestPki();
    const tls = await startHub({ PULSEWIRE_TLS_CERT: pki.files.serverCert, PULSEWIRE_TLS_KEY: pki.files.serverKey });
    try {
      const res = await tls.app.inject({ method: 'GET', url: '/' });
      expect(res.statusCode).toBe(200);
      expect(res.headers['strict-transport-security']).toBe('max-age=15552000');
      expect(res.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    } finally {
      await tls.close();
    }
  });
});

describe('the content security policy in a real browser', () => {
  let hub: TestHub;
  let browser: Browser;
  let context: BrowserContext;
  let violations: PolicyViolations;
  let framer: http.Server;
  beforeAll(async () => {
    hub = await startHub();
    browser = await launchBrowser();
    context = await browser.newContext();
    violations = await watchContentSecurityPolicy(context);
    // Another origin (another port) whose page frames the dashboard.
    framer = http.createServer((_req, res) => res.end(`<!doctype html><iframe id="f" src="${hub.baseUrl}/"></iframe>`));
    await new Promise<void>((resolve) => framer.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    await browser?.close();
    framer?.closeAllConnections();
    framer?.close();
    await hub?.close();
  });

  it('the page logs in and goes live under its policy without a single violation', async () => {
    const page = await context.newPage();
    await page.goto(hub.baseUrl);
    await logIn(page, OPERATOR_TOKEN);
    await page.getByTestId('fleet-view').waitFor();
    await expect.poll(() => page.locator('#conn').getAttribute('data-state')).toBe('open');
    expect(violations.list()).toEqual([]);
    await page.close();
  });

  it('an injected inline script does not run and is reported: the policy is in force and the watch sees it', async () => {
    const page = await context.newPage();
    await page.goto(hub.baseUrl);
    await page.evaluate(`(() => {
      const s = document.createElement('script');
      s.textContent = 'window.injected = true';
      document.head.append(s);
    })()`);
    await expect.poll(() => violations.list().some((v) => v.directive === 'script-src-elem' && v.blocked === 'inline')).toBe(true);
    expect(await page.evaluate('window.injected')).toBeUndefined();
    violations.clear();
    await page.close();
  });

  it('another site cannot frame the dashboard', async () => {
    const page = await context.newPage();
    await page.goto(`http://127.0.0.1:${(framer.address() as AddressInfo).port}/`);
    // Chromium refuses the frame and says why (frame-ancestors; X-Frame-Options says the same to older browsers).
    await expect.poll(() => violations.list().some((v) => /frame-ancestors 'none'/.test(v.blocked))).toBe(true);
    expect(await page.frameLocator('#f').locator('[data-testid=login-form]').count()).toBe(0);
    violations.clear();
    await page.close();
  });
});
