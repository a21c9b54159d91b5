/**
 * The fleet view at 10,000 devices fed by the hub's real live stream: the
 * devices' events are put on the hub's bus directly (what the gateway would
 * publish), so the page gets the stream's real snapshot and event frames
 * without 10,000 sockets in the test. Asserts DOM sizes, and bounds the
 * page's main-thread blocks during the burst.
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
    // How long the main thread is blocked from here on, by a 10 ms heartbeat timer: a gap between two
    // beats is a task (or several) that ran that long. Not PerformanceObserver('longtask'): this headless
    // Chromium reports no such entries (checked with a 300 ms busy loop), so it would assert nothing.
    await page.evaluate(`(() => {
      window.blocked = [];
      let last = performance.now();
      const beat = () => {
        const now = performance.now();
        if (now - last > 50) window.blocked.push(now - last);
        last = now;
        window.heartbeat = setTimeout(beat, 10);
      };
      beat();
    })()`);
    // The probe itself must see a blocked main thread, or the bounds below would be vacuous.
    await page.evaluate('(() => { const t = performance.now(); while (performance.now() - t < 300); })()');
    await expect.poll(() => page.evaluate<number>('window.blocked.length')).toBe(1);
    expect(await page.evaluate<number>('window.blocked[0]')).toBeGreaterThanOrEqual(300);
    await page.evaluate('window.blocked = []');

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
    // 30,000 readings and 1,000 statuses in a few frames of up to 10,000 each: the page handles a
    // frame in one task. Bounds are generous for a shared 2-core machine; a page that re-rendered the
    // list or touched the DOM per reading blocks for seconds per frame and fails them.
    const blocked = await page.evaluate<number[]>('clearTimeout(window.heartbeat), window.blocked');
    console.log(`main thread blocked during the burst (ms): ${blocked.map((d) => Math.round(d)).join(', ') || 'never over 50'}`);
    expect(blocked.filter((d) => d > 200).length, `blocked over 200 ms: ${blocked.join(', ')}`).toBeLessThanOrEqual(3);
    expect(Math.max(0, ...blocked), 'longest block (ms)').toBeLessThan(1000);
    expect(await page.locator(`[data-testid=device-list] .row[data-device="${id(0)}"] .badge`).textContent()).toBe('offline');
    // The page still answers at once: a search narrows 10,000 to one row.
    await page.getByTestId('device-search').fill(id(4321));
    await expect.poll(() => rows.count()).toBe(1);
    await screenshot(page, 'fleet-10k-live-stream');
  }, 60_000);
});
