/**
 * The page's behaviour in a real browser against a scripted hub: the built
 * page comes from a real hub, while the operator API and the live stream are
 * played by the test (Playwright routing), so each case can make the hub do
 * exactly what it needs: refuse a token, drop the stream, block WebSocket,
 * answer a command. test/dashboard/e2e.test.ts runs against the real
 * backend, including the SSE fallback (Playwright cannot fake a stream).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page, Route, WebSocketRoute } from 'playwright-core';
import { launchBrowser, logIn, screenshot } from '../support/browser.js';
import { startHub, type TestHub } from '../support/hub.js';

type Handler = (route: Route, url: URL, body: unknown) => Promise<void> | void;

/** Routes /v1/* REST calls to `handlers` keyed "METHOD /path"; anything else is a 404. */
async function mockApi(page: Page, handlers: Record<string, Handler>, calls: string[] = []): Promise<string[]> {
  await page.route((url) => url.pathname.startsWith('/v1/') && url.pathname !== '/v1/live', async (route) => {
    const request = route.request();
    const url = new URL(request.url());
    const key = `${request.method()} ${url.pathname}`;
    calls.push(`${key}${url.search}`);
    const text = request.postData();
    const handler = handlers[key];
    if (!handler) return route.fulfill({ status: 404, json: { error: { code: 'PW_ERR_NOT_FOUND', message: key } } });
    return handler(route, url, text ? JSON.parse(text) : undefined);
  });
  return calls;
}

const hello = JSON.stringify({ type: 'hello', version: 1, tickMs: 100 });
function snapshot(seq: number, devices: { device: string; online: boolean; at: number; reason: string }[], latest: unknown[] = []): string {
  const online = devices.filter((d) => d.online).length;
  return JSON.stringify({ type: 'snapshot', seq, counts: { online, offline: devices.length - online }, devices, latest });
}
const ok: Handler = (route) => route.fulfill({ json: { devices: [], nextCursor: null } });

describe('dashboard page behaviour (scripted hub)', () => {
  let hub: TestHub;
  let browser: Browser;
  const contexts: BrowserContext[] = [];

  async function newPage(): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    contexts.push(context);
    return context.newPage();
  }

  beforeAll(async () => {
    hub = await startHub();
    browser = await launchBrowser();
  });
  afterAll(async () => {
    for (const context of contexts) await context.close().catch(() => undefined);
    await browser?.close();
    await hub?.close();
  });

  it('logs in with the token once and keeps it nowhere', async () => {
    const page = await newPage();
    let loggedIn = false;
    const logins: unknown[] = [];
    await mockApi(page, {
      'GET /v1/devices': (route) => (loggedIn ? ok(route, new URL('http://x'), undefined) : route.fulfill({ status: 401, json: { error: { code: 'PW_ERR_OPERATOR_AUTH', message: 'no' } } })),
      'POST /v1/login': (route, _url, body) => {
        logins.push(body);
        if ((body as { token?: string }).token !== 'the-right-token') return route.fulfill({ status: 401, json: { error: { code: 'PW_ERR_OPERATOR_AUTH', message: 'no' } } });
        loggedIn = true;
        return route.fulfill({ status: 204, headers: { 'set-cookie': 'pulsewire_session=s1; Path=/; HttpOnly; SameSite=Strict' } });
      },
    });
    let streams = 0;
    await page.routeWebSocket('**/v1/live', (ws) => {
      streams++;
      ws.send(hello);
      ws.send(snapshot(1, [{ device: 'boiler-1', online: true, at: Date.now(), reason: 'connected' }]));
    });
    await page.goto(hub.baseUrl);
    await page.getByTestId('login-form').waitFor();
    expect(streams).toBe(0);
    await logIn(page, 'a-wrong-token');
    await expect.poll(() => page.getByTestId('login-error').textContent()).toContain('refused');
    await screenshot(page, 'login-refused');
    await logIn(page, 'the-right-token');
    await page.getByTestId('fleet-view').waitFor();
    await expect.poll(() => page.getByTestId('online-count').textContent()).toBe('1');
    expect(logins).toEqual([{ token: 'a-wrong-token' }, { token: 'the-right-token' }]);
    // Browser code as a string: this file is type-checked for Node, without the DOM library.
    const stored = await page.evaluate<string>('JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + location.href + document.cookie');
    expect(stored).not.toContain('the-right-token');
    expect(streams).toBe(1);
  });

  it('shows a banner while disconnected, backs off exponentially and resumes without a reload', async () => {
    const page = await newPage();
    await mockApi(page, { 'GET /v1/devices': ok });
    const opened: number[] = [];
    let current: WebSocketRoute | undefined;
    await page.routeWebSocket('**/v1/live', (ws) => {
      opened.push(Date.now());
      current = ws;
      const n = opened.length;
      if (n === 1) {
        ws.send(hello);
        ws.send(snapshot(1, [{ device: 'boiler-1', online: true, at: Date.now(), reason: 'connected' }]));
      } else if (n <= 5) {
        // A hub that accepts and drops at once, before any snapshot: the delay must keep growing.
        ws.send(hello);
        setTimeout(() => ws.close({ code: 1013, reason: 'try later' }), 50);
      } else {
        ws.send(hello);
        ws.send(snapshot(9, [
          { device: 'boiler-1', online: false, at: Date.now(), reason: 'ping-timeout' },
          { device: 'boiler-2', online: true, at: Date.now(), reason: 'connected' },
        ]));
      }
    });
    await page.goto(hub.baseUrl);
    await expect.poll(() => page.getByTestId('online-count').textContent()).toBe('1');
    const markLoaded = await page.evaluate<boolean>(`(() => {
      window.marker = 'same page';
      window.bannerTexts = [];
      const banner = document.getElementById('banner');
      new MutationObserver(() => { if (!banner.hidden) window.bannerTexts.push(banner.textContent); })
        .observe(banner, { attributes: true, childList: true, subtree: true });
      return true;
    })()`);
    expect(markLoaded).toBe(true);
    const droppedAt = Date.now();
    current!.close({ code: 1012, reason: 'restart' });
    await expect.poll(() => page.locator('#banner').isVisible()).toBe(true);
    await screenshot(page, 'disconnected-banner');
    // Five waits of at most 0.5, 1, 2, 4 and 8 s; the ceiling leaves a busy machine as long again and more.
    await expect.poll(() => opened.length, { timeout: 40_000 }).toBe(6);
    await expect.poll(() => page.getByTestId('offline-count').textContent()).toBe('1');
    await expect.poll(() => page.locator('#banner').isHidden()).toBe(true);
    expect(await page.getByTestId('online-count').textContent()).toBe('1');
    expect(await page.getByTestId('recent-offline').textContent()).toContain('ping-timeout');
    expect(await page.evaluate<string>('window.marker')).toBe('same page');
    const texts = await page.evaluate<string[]>('window.bannerTexts');
    expect(texts.some((t) => /Disconnected from the hub.*Reconnecting in/.test(t))).toBe(true);
    // Attempt n waits 50-100 % of 500 ms x 2^(n-1) (reconnect.ts, unit-tested in page-logic.test.ts).
    // The page's own banner says each wait as it schedules it, so what is asserted here is the
    // schedule, whatever the machine's speed: attempts 1 to 5 in order, never started over (no
    // snapshot came), each announced with at least half its ceiling, in whole seconds rounded up.
    const announced = new Map<number, number>();
    for (const t of texts) {
      const m = /Reconnecting in (\d+) s \(attempt (\d+)\)/.exec(t);
      if (m && !announced.has(Number(m[2]))) announced.set(Number(m[2]), Number(m[1]));
    }
    expect([...announced.keys()]).toEqual([1, 2, 3, 4, 5]);
    for (const [attempt, seconds] of announced) expect(seconds, `attempt ${attempt}`).toBeGreaterThanOrEqual(Math.ceil((0.5 * 500 * 2 ** (attempt - 1)) / 1000));
    expect(announced.get(5)).toBeGreaterThanOrEqual(4);
    // And the page really waited: at least the five waits' lower bounds (0.25 + 0.5 + 1 + 2 + 4 s)
    // passed between the drop and the sixth connection (load only makes it longer).
    expect(opened[5]! - droppedAt).toBeGreaterThanOrEqual(7750);
  }, 60_000);

  it('device view: backfilled live chart, state with delta, a command followed to success, a desired patch', async () => {
    const page = await newPage();
    const now = Date.now();
    const history = Array.from({ length: 30 }, (_, i) => ({ time: new Date(now - (60 - i) * 10_000).toISOString(), value: 20 + Math.sin(i / 4) }));
    let state = { deviceId: 'boiler-1', reported: { interval: 10, led: false }, desired: { interval: 10 }, version: 1, delta: {} };
    const posted: unknown[] = [];
    const patches: { body: unknown; type: string | undefined }[] = [];
    const calls = await mockApi(page, {
      'GET /v1/devices': ok,
      'GET /v1/devices/boiler-1': (route) => route.fulfill({ json: { id: 'boiler-1', provisioning: 'enrollment', createdAt: new Date(now).toISOString(), online: true, connectedAt: new Date(now).toISOString(), lastSeen: new Date(now).toISOString(), offlineReason: null, remoteAddress: '127.0.0.1', messagesIn: 42 } }),
      'GET /v1/devices/boiler-1/telemetry': (route, url) => route.fulfill({ json: { deviceId: 'boiler-1', name: url.searchParams.get('name'), agg: 'mean', every: '1000ms', from: '', to: '', points: url.searchParams.get('name') === 'temp' ? history : [] } }),
      'GET /v1/devices/boiler-1/state': (route) => route.fulfill({ json: state }),
      'GET /v1/devices/boiler-1/commands': (route) => route.fulfill({ json: { commands: [] } }),
      'GET /v1/devices/boiler-1/commands/c-1': (route) => route.fulfill({ json: command('sent') }),
      'POST /v1/devices/boiler-1/commands': (route, _url, body) => {
        posted.push(body);
        return route.fulfill({ status: 202, json: command('queued') });
      },
      'PATCH /v1/devices/boiler-1/desired': (route, _url, body) => {
        patches.push({ body, type: route.request().headers()['content-type'] });
        state = { ...state, desired: { ...state.desired, ...(body as object) }, version: 2 };
        return route.fulfill({ json: state });
      },
    });
    function command(status: string, result?: unknown) {
      return { id: 'c-1', deviceId: 'boiler-1', name: 'set_interval', args: { seconds: 5 }, status, createdAt: new Date(now).toISOString(), ttlMs: 60_000, timeoutMs: 30_000, ...(result ? { result } : {}) };
    }
    let stream: WebSocketRoute | undefined;
    const subscribes: unknown[] = [];
    await page.routeWebSocket('**/v1/live', (ws) => {
      stream = ws;
      ws.send(hello);
      ws.send(snapshot(1, [{ device: 'boiler-1', online: true, at: now, reason: 'connected' }]));
      ws.onMessage((text) => {
        subscribes.push(JSON.parse(String(text)));
        ws.send(snapshot(2, [{ device: 'boiler-1', online: true, at: now, reason: 'connected' }], [
          { device: 'boiler-1', name: 'temp', unit: 'Cel', t: now - 1000, kind: 'value', v: 21.25 },
          { device: 'boiler-1', name: 'mode', t: now - 1000, kind: 'text', v: 'eco' },
        ]));
      });
    });
    await page.goto(`${hub.baseUrl}/#/device/boiler-1`);
    await page.getByTestId('device-view').waitFor();
    await expect.poll(() => subscribes).toEqual([{ type: 'subscribe', devices: ['boiler-1'], names: [] }]);
    const chart = page.locator('.chart[data-series="temp"]');
    await expect.poll(() => chart.getAttribute('data-points')).toBe('31');
    expect(await chart.locator('canvas').count()).toBe(1);
    expect(calls).toContainEqual(expect.stringMatching(/^GET \/v1\/devices\/boiler-1\/telemetry\?name=temp&field=value&from=\d+&to=\d+$/));
    stream!.send(JSON.stringify({ type: 'events', seq: 3, readings: [{ device: 'boiler-1', name: 'temp', unit: 'Cel', t: now, kind: 'value', v: 23.5 }] }));
    await expect.poll(() => chart.getByTestId('latest-value').textContent()).toBe('23.50 Cel');
    expect(await chart.getAttribute('data-points')).toBe('32');
    expect(await page.locator('table.texts').textContent()).toContain('eco');
    expect(await page.getByTestId('device-status').textContent()).toBe('online');

    // State: the page shows reported and desired; a patch makes a delta until the device reports it.
    await expect.poll(() => page.getByTestId('desired-version').textContent()).toBe('desired version 1');
    await page.getByTestId('patch-text').fill('{"led": true}');
    await page.getByTestId('patch-send').click();
    await expect.poll(() => page.getByTestId('delta').textContent()).toContain('"led": true');
    expect(patches).toEqual([{ body: { led: true }, type: 'application/merge-patch+json' }]);
    expect(await page.getByTestId('desired-version').textContent()).toBe('desired version 2');
    stream!.send(JSON.stringify({ type: 'events', seq: 4, state: [{ device: 'boiler-1', kind: 'reported', state: { interval: 10, led: true }, at: Date.now() }] }));
    await expect.poll(() => page.getByTestId('delta').textContent()).toBe('{}');

    // A command: queued from the POST, then sent and succeeded from the stream.
    await page.getByTestId('command-name').fill('set_interval');
    await page.getByTestId('command-args').fill('{"seconds": 5}');
    await page.getByTestId('command-send').click();
    const status = page.locator('tr[data-command="c-1"] [data-testid=command-status]');
    await expect.poll(() => status.textContent()).toMatch(/queued|sent/);
    expect(posted).toEqual([{ name: 'set_interval', args: { seconds: 5 } }]);
    stream!.send(JSON.stringify({ type: 'events', seq: 5, commands: [command('succeeded', { interval: 5 })] }));
    await expect.poll(() => status.textContent()).toBe('succeeded');
    // A late "sent" never moves a finished command back. The frame after it is the witness: once the
    // page shows seq 7, it has handled seq 6 (frames are handled in order), whatever the machine's speed.
    stream!.send(JSON.stringify({ type: 'events', seq: 6, commands: [command('sent')] }));
    stream!.send(JSON.stringify({ type: 'events', seq: 7, status: [{ device: 'boiler-1', online: false, at: Date.now(), reason: 'ping-timeout' }] }));
    await expect.poll(() => page.getByTestId('device-reason').textContent()).toContain('ping-timeout');
    expect(await status.textContent()).toBe('succeeded');
    expect(await page.locator('tr[data-command="c-1"]').textContent()).toContain('{"interval":5}');
    await screenshot(page, 'device-view-scripted');

    // After a dropped stream the view re-reads history, state and commands (the stream does not replay them).
    const historyCalls = () => calls.filter((c) => c.startsWith('GET /v1/devices/boiler-1/telemetry')).length;
    const stateCalls = () => calls.filter((c) => c === 'GET /v1/devices/boiler-1/state').length;
    const [historyBefore, stateBefore] = [historyCalls(), stateCalls()];
    stream!.close({ code: 1012, reason: 'restart' });
    await expect.poll(historyCalls).toBeGreaterThan(historyBefore);
    await expect.poll(stateCalls).toBeGreaterThan(stateBefore);
    expect(await chart.getAttribute('data-points')).toBe('32');
  });

  it('device view of a device that sent nothing since the hub started: charts from the series list, counters backfilled from the sum field', async () => {
    const page = await newPage();
    const now = Date.now();
    const history = Array.from({ length: 30 }, (_, i) => ({ time: new Date(now - (60 - i) * 10_000).toISOString(), value: 1000 + i }));
    const calls = await mockApi(page, {
      'GET /v1/devices': ok,
      'GET /v1/devices/meter-1': (route) => route.fulfill({ json: { id: 'meter-1', provisioning: 'enrollment', createdAt: new Date(now).toISOString(), online: false, offlineReason: 'ping-timeout', messagesIn: 7 } }),
      'GET /v1/devices/meter-1/series': (route) => route.fulfill({ json: { deviceId: 'meter-1', series: [
        { name: 'energy', kind: 'sum', unit: 'Wh', time: new Date(now - 1000).toISOString(), value: 1030 },
        { name: 'mode', kind: 'text', time: new Date(now - 1000).toISOString(), value: 'eco' },
        { name: 'temp', kind: 'value', unit: 'Cel', time: new Date(now - 1000).toISOString(), value: 20 },
      ] } }),
      // History answers only for the field the series has, as InfluxDB does.
      'GET /v1/devices/meter-1/telemetry': (route, url) => {
        const field = url.searchParams.get('field') ?? 'value';
        const has = (url.searchParams.get('name') === 'energy' && field === 'sum') || (url.searchParams.get('name') === 'temp' && field === 'value');
        return route.fulfill({ json: { deviceId: 'meter-1', name: url.searchParams.get('name'), agg: 'mean', field, every: '1000ms', from: '', to: '', points: has ? history : [] } });
      },
      'GET /v1/devices/meter-1/state': (route) => route.fulfill({ json: { deviceId: 'meter-1', reported: {}, desired: {}, version: 0, delta: {} } }),
      'GET /v1/devices/meter-1/commands': (route) => route.fulfill({ json: { commands: [] } }),
    });
    await page.routeWebSocket('**/v1/live', (ws) => {
      ws.send(hello);
      // A hub just restarted and not seeded: the device is known, no latest values.
      ws.send(snapshot(1, [{ device: 'meter-1', online: false, at: now - 5000, reason: 'ping-timeout' }]));
      ws.onMessage(() => ws.send(snapshot(2, [{ device: 'meter-1', online: false, at: now - 5000, reason: 'ping-timeout' }])));
    });
    await page.goto(`${hub.baseUrl}/#/device/meter-1`);
    await page.getByTestId('device-view').waitFor();
    const energy = page.locator('.chart[data-series="energy"]');
    const temp = page.locator('.chart[data-series="temp"]');
    await expect.poll(() => energy.getAttribute('data-points')).toBe('31');
    await expect.poll(() => temp.getAttribute('data-points')).toBe('31');
    expect(await energy.getByTestId('latest-value').textContent()).toBe('1030 Wh');
    expect(await page.locator('table.texts').textContent()).toContain('eco');
    expect(await page.getByText('Waiting for readings').isVisible()).toBe(false);
    expect(calls).toContainEqual(expect.stringMatching(/^GET \/v1\/devices\/meter-1\/telemetry\?name=energy&field=sum&from=\d+&to=\d+$/));
    expect(calls).toContainEqual(expect.stringMatching(/^GET \/v1\/devices\/meter-1\/telemetry\?name=temp&field=value&from=/));
    await screenshot(page, 'device-view-series-list');
  });
});
