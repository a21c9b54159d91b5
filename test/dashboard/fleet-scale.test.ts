/**
 * The fleet view at 10,000 devices, in a real browser: the page is the built
 * one served by a real hub, while the live stream and the operator API are
 * played by the test (Playwright's WebSocket and request routing), so the
 * numbers are exact and no 10,000 device connections are needed. Asserts DOM
 * sizes, not timings: only the visible rows exist, whatever the fleet size.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page, WebSocketRoute } from 'playwright-core';
import { launchBrowser, screenshot } from '../support/browser.js';
import { startHub, type TestHub } from '../support/hub.js';

const N = 10_000;
const id = (i: number) => `dev-${String(i).padStart(5, '0')}`;

describe('fleet view with 10,000 devices', () => {
  let hub: TestHub;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let stream: WebSocketRoute | undefined;
  const subscribes: unknown[] = [];

  beforeAll(async () => {
    hub = await startHub();
    browser = await launchBrowser();
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    const now = Date.now();
    await page.route('**/v1/devices?limit=1', (route) => route.fulfill({ json: { devices: [], nextCursor: null } }));
    await page.routeWebSocket('**/v1/live', (ws) => {
      stream = ws;
      ws.onMessage((message) => subscribes.push(JSON.parse(String(message))));
      ws.send(JSON.stringify({ type: 'hello', version: 1, tickMs: 100 }));
      const devices = Array.from({ length: N }, (_, i) => ({
        device: id(i), online: i % 10 !== 0, at: now - i * 1000, reason: i % 10 !== 0 ? 'connected' : 'ping-timeout',
      }));
      const latest = Array.from({ length: N }, (_, i) => ({ device: id(i), name: 'temp', unit: 'Cel', t: now, kind: 'value', v: 20 + (i % 7) }));
      ws.send(JSON.stringify({ type: 'snapshot', seq: 1, counts: { online: N - N / 10, offline: N / 10 }, devices, latest }));
    });
    await page.goto(hub.baseUrl);
  });

  afterAll(async () => {
    await browser?.close();
    await hub?.close();
  });

  const rows = () => page.locator('[data-testid=device-list] .row');

  it('shows the counts and renders only the visible rows', async () => {
    await expect.poll(() => page.getByTestId('online-count').textContent()).toBe(String(N - N / 10));
    expect(await page.getByTestId('offline-count').textContent()).toBe(String(N / 10));
    expect(await page.getByTestId('total-count').textContent()).toBe(String(N));
    const count = await rows().count();
    expect(count).toBeGreaterThan(10);
    expect(count).toBeLessThan(80);
    // The scroll height still stands for all 10,000.
    const scrollHeight = await page.getByTestId('device-list').evaluate((el) => el.scrollHeight);
    expect(scrollHeight).toBeGreaterThanOrEqual(N * 32);
    expect(await rows().first().getAttribute('data-device')).toBe(id(0));
    await screenshot(page, 'fleet-10k');
  });

  it('scrolls to the end with the same small number of rows', async () => {
    await page.getByTestId('device-list').evaluate((el) => { el.scrollTop = el.scrollHeight; });
    await expect.poll(() => page.locator(`[data-testid=device-list] .row[data-device="${id(N - 1)}"]`).count()).toBe(1);
    expect(await rows().count()).toBeLessThan(80);
    await page.getByTestId('device-list').evaluate((el) => { el.scrollTop = 0; });
    await expect.poll(() => page.locator(`[data-testid=device-list] .row[data-device="${id(0)}"]`).count()).toBe(1);
  });

  it('applies a burst of 10,000 status changes in one frame of work', async () => {
    const at = Date.now() + 1000;
    // Every second device flips: half of them go offline, the previously offline come back.
    const status = Array.from({ length: N }, (_, i) => ({ device: id(i), online: i % 2 === 0, at, reason: i % 2 === 0 ? 'connected' : 'closed by device' }));
    stream!.send(JSON.stringify({ type: 'events', seq: 2, status, conflated: false }));
    await expect.poll(() => page.getByTestId('online-count').textContent()).toBe(String(N / 2));
    expect(await page.getByTestId('offline-count').textContent()).toBe(String(N / 2));
    expect(await rows().count()).toBeLessThan(80);
    // The visible badges follow.
    const second = page.locator(`[data-testid=device-list] .row[data-device="${id(1)}"] .badge`);
    await expect.poll(() => second.textContent()).toBe('offline');
    // Recently offline lists the reason.
    expect(await page.getByTestId('recent-offline').textContent()).toContain('closed by device');
  });

  it('searches the 10,000 and still renders only what matches', async () => {
    await page.getByTestId('device-search').fill('dev-0999');
    await expect.poll(() => rows().count()).toBe(10);
    expect(await page.getByTestId('shown-count').textContent()).toBe('10 shown');
    await page.getByTestId('device-search').fill('');
    await page.getByTestId('status-filter').selectOption('offline');
    await expect.poll(() => page.getByTestId('shown-count').textContent()).toBe(`${N / 2} shown`);
    expect(await rows().count()).toBeLessThan(80);
    await screenshot(page, 'fleet-10k-offline-filter');
  });
});
