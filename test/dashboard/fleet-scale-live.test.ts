/**
 * The fleet view at 10,000 devices fed by the hub's real live stream: the
 * devices' events are put on the hub's bus directly (what the gateway would
 * publish; bench/lib/fleet-burst.ts), so the page gets the stream's real
 * snapshot and event frames without 10,000 sockets in the test. Asserts what
 * the page shows and how many rows it keeps in the DOM. How long its main
 * thread is blocked meanwhile is a speed claim: `npm run bench -- fleet-page`
 * measures it with the same burst.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { emitEveryTenthOffline, emitFleetOnline, emitReadingRounds, fleetDeviceId as id } from '../../bench/lib/fleet-burst.js';
import { launchBrowser, logIn, screenshot } from '../support/browser.js';
import { OPERATOR_TOKEN, startHub, type TestHub } from '../support/hub.js';

const N = 10_000;

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
    emitFleetOnline(hub.app.bus, N);
    await page.goto(hub.baseUrl);
    await logIn(page, OPERATOR_TOKEN);
    await expect.poll(() => page.getByTestId('online-count').textContent(), { timeout: 30_000 }).toBe(String(N));
    const rows = page.locator('[data-testid=device-list] .row');
    expect(await rows.count()).toBeLessThan(80);

    // Three readings for every device, then every tenth device drops off.
    await emitReadingRounds(hub.app.bus, N, 3);
    emitEveryTenthOffline(hub.app.bus, N);
    await expect.poll(() => page.getByTestId('offline-count').textContent(), { timeout: 30_000 }).toBe(String(N / 10));
    expect(await page.getByTestId('online-count').textContent()).toBe(String(N - N / 10));
    expect(await rows.count()).toBeLessThan(80);
    // The last round's value, on the first row: nothing of the burst was dropped or left behind.
    await expect.poll(() => rows.first().locator('.value').textContent()).toBe('temp 2 Cel');
    expect(await page.locator(`[data-testid=device-list] .row[data-device="${id(0)}"] .badge`).textContent()).toBe('offline');
    // The page still answers: a search narrows 10,000 to one row.
    await page.getByTestId('device-search').fill(id(4321));
    await expect.poll(() => rows.count()).toBe(1);
    await screenshot(page, 'fleet-10k-live-stream');
  }, 90_000);
});
