/**
 * The fleet view at 10,000 devices fed by the hub's real live stream: the
 * devices' events are put on the hub's bus directly (what the gateway would
 * publish), so the page gets the stream's real snapshot and event frames
 * without 10,000 sockets in the test. Asserts DOM sizes, not timings.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { launchBrowser, logIn, screenshot } from '../support/browser.js';
import { OPERATOR_TOKEN, startHub, type TestHub } from '../support/hub.js';

const N = 10_000;
const id = (i: number) => `fleet-${String(i).padStart(5, '0')}`;

describe('fleet view with 10,000 devices on the real live stream', () => {
  let hub: TestHub;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    hub = await startHub();
    browser = await launchBrowser();
    page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  });
  afterAll(async () => {
    await browser?.close();
    await hub?.close();
  });

  it('renders only the visible rows while 10,000 devices come online, report and go offline', async () => {
    const now = Date.now();
    for (let i = 0; i < N; i++) hub.app.bus.emit('device.online', { deviceId: id(i), at: now, remoteAddress: '127.0.0.1', method: 'secret' });
    await page.goto(hub.baseUrl);
    await logIn(page, OPERATOR_TOKEN);
    await expect.poll(() => page.getByTestId('online-count').textContent(), { timeout: 15_000 }).toBe(String(N));
    const rows = page.locator('[data-testid=device-list] .row');
    expect(await rows.count()).toBeLessThan(80);

    // A stream of readings for every device, then every tenth device drops off.
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < N; i++) {
        hub.app.bus.emit('telemetry.accepted', { deviceId: id(i), readings: [{ name: 'temp', unit: 'Cel', kind: 'value', value: round + i / N, timeUs: (Date.now() + round) * 1000 }] });
      }
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
    for (let i = 0; i < N; i += 10) hub.app.bus.emit('device.offline', { deviceId: id(i), at: Date.now(), reason: 'ping-timeout' });
    await expect.poll(() => page.getByTestId('offline-count').textContent(), { timeout: 15_000 }).toBe(String(N / 10));
    expect(await page.getByTestId('online-count').textContent()).toBe(String(N - N / 10));
    expect(await rows.count()).toBeLessThan(80);
    await expect.poll(() => rows.first().locator('.value').textContent()).toBe('temp 2 Cel');
    expect(await page.locator(`[data-testid=device-list] .row[data-device="${id(0)}"] .badge`).textContent()).toBe('offline');
    // The page still answers at once: a search narrows 10,000 to one row.
    await page.getByTestId('device-search').fill(id(4321));
    await expect.poll(() => rows.count()).toBe(1);
    await screenshot(page, 'fleet-10k-live-stream');
  }, 60_000);
});
