/**
 * The dashboard end to end in a real browser against a real hub: log in
 * through the page, watch a device-sim device (a separate process) come
 * online and its live value change, send it a command and see it succeed,
 * patch its desired state and see it reported, kill -9 the process and see
 * the device go offline with its reason; then the same page over SSE when
 * WebSocket is blocked. All of it under the hub's content security policy
 * with not one violation reported by the browser (test/security/security-headers.test.ts
 * shows the watch sees one). Screenshots go to test-artifacts/dashboard/.
 *
 * The cases run in order on one page and one device-sim process; nothing is
 * skipped: a missing Chromium or route fails (scripts/setup.sh installs
 * Chromium), and a case after a failed start fails saying so.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchBrowser, logIn, screenshot, watchContentSecurityPolicy, type PolicyViolations } from '../support/browser.js';
import { ENROLLMENT_KEY, OPERATOR_TOKEN, startHub, type TestHub } from '../support/hub.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const DEVICE = 'e2e-00001';

describe('dashboard end to end (real hub, device-sim, Chromium)', () => {
  let hub: TestHub;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let violations: PolicyViolations;
  let sim: ChildProcess | undefined;
  let simOutput = '';
  /** The device-sim process the first case starts; the later cases need it. */
  const started = (): ChildProcess => {
    if (!sim) throw new Error('device-sim was not started: the first case failed');
    return sim;
  };

  beforeAll(async () => {
    // Not a short ping interval: the kill -9 case is seen through the closed TCP connection, and a 1 s
    // interval let a busy machine drop the live device for a late pong in the middle of the other cases.
    hub = await startHub({ PULSEWIRE_PING_INTERVAL_MS: '10000' });
    browser = await launchBrowser();
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    violations = await watchContentSecurityPolicy(context);
    page = await context.newPage();
  });

  afterAll(async () => {
    sim?.kill('SIGKILL');
    await browser?.close();
    await hub?.close();
  });

  it('logs in and sees a simulated device come online', async () => {
    await page.goto(hub.baseUrl);
    await page.getByTestId('login-form').waitFor();
    await screenshot(page, 'e2e-1-login');
    await logIn(page, OPERATOR_TOKEN);
    await page.getByTestId('fleet-view').waitFor();
    await expect.poll(() => page.locator('#conn').getAttribute('data-state')).toBe('open');

    // One process (tsx as a loader, not its CLI, which would fork a child that outlives kill -9).
    sim = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'device-sim/cli.ts'),
      '--url', hub.deviceUrl, '--enrollment-key', ENROLLMENT_KEY, '--devices', '1', '--prefix', 'e2e-',
      '--profile', 'thermostat', '--rate', '4', '--batch', '1', '--status', 'off'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    sim.stdout!.on('data', (chunk) => (simOutput += chunk));
    sim.stderr!.on('data', (chunk) => (simOutput += chunk));

    const row = page.locator(`[data-testid=device-list] .row[data-device="${DEVICE}"]`);
    await expect.poll(() => row.getAttribute('data-online'), { timeout: 30_000 }).toBe('true')
      .catch((err: Error) => { throw new Error(`${err.message}\ndevice-sim said: ${simOutput}`); });
    expect(await row.locator('.badge').textContent()).toBe('online');
    expect(await page.getByTestId('online-count').textContent()).toBe('1');
    await expect.poll(() => row.locator('.value').textContent()).toMatch(/(temperature|humidity) [\d.]+/);
    await screenshot(page, 'e2e-2-fleet-online');
  }, 60_000);

  it('shows the live value of its series changing', async () => {
    started();
    await page.locator(`[data-testid=device-list] .row[data-device="${DEVICE}"]`).click();
    await page.getByTestId('device-view').waitFor();
    // device-sim names its series with a base name: "e2e-00001/temperature".
    const chart = page.locator(`.chart[data-series="${DEVICE}/temperature"]`);
    await chart.locator('canvas').waitFor();
    const points = async () => Number(await chart.getAttribute('data-points'));
    const first = await points();
    const value = await chart.getByTestId('latest-value').textContent();
    await expect.poll(points).toBeGreaterThan(first + 2);
    await expect.poll(() => chart.getByTestId('latest-value').textContent()).not.toBe(value);
    expect(await page.getByTestId('device-status').textContent()).toBe('online');
    await screenshot(page, 'e2e-3-device-live');
  }, 30_000);

  it('sends a command and sees it succeed', async () => {
    started();
    await page.getByTestId('command-name').fill('set_led');
    await page.getByTestId('command-args').fill('{"on": true}');
    await page.getByTestId('command-send').click();
    const status = page.locator('[data-testid=command-rows] tr').first().getByTestId('command-status');
    await expect.poll(() => status.textContent(), { timeout: 20_000 }).toBe('succeeded');
    expect(await page.locator('[data-testid=command-rows] tr').first().textContent()).toContain('{"led":true}');
    await screenshot(page, 'e2e-4-command-succeeded');
  }, 30_000);

  it('patches the desired state and sees the device report it', async () => {
    started();
    await page.getByTestId('patch-text').fill('{"interval": 0.5}');
    await page.getByTestId('patch-send').click();
    await expect.poll(() => page.getByTestId('desired').textContent()).toContain('"interval": 0.5');
    await expect.poll(() => page.getByTestId('reported').textContent(), { timeout: 20_000 }).toContain('"interval": 0.5');
    await expect.poll(() => page.getByTestId('delta').textContent()).toBe('{}');
  }, 30_000);

  it('sees the device go offline with its reason when its process is killed', async () => {
    started().kill('SIGKILL');
    await expect.poll(() => page.getByTestId('device-status').textContent(), { timeout: 20_000 }).toBe('offline');
    const reason = await page.getByTestId('device-reason').textContent();
    // The killed process's socket is closed by its kernel: the hub reads that close (or its reset).
    expect(reason).toMatch(/^offline: (closed by device|error)/);
    await screenshot(page, 'e2e-5-device-offline');
    await page.locator('a.back').click();
    const recent = page.locator(`[data-testid=recent-offline] li[data-device="${DEVICE}"]`);
    await expect.poll(() => recent.count()).toBe(1);
    expect(reason).toContain(await recent.getByTestId('offline-reason').textContent());
    expect(await page.getByTestId('offline-count').textContent()).toBe('1');
    await screenshot(page, 'e2e-6-fleet-offline');
  }, 30_000);

  it('falls back to SSE when WebSocket is blocked, with the same data', async () => {
    const blocked = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    try {
      // A network that refuses WebSocket upgrades: every attempt closes before it opens.
      await blocked.addInitScript(`(() => {
        let attempts = 0;
        window.WebSocket = class BlockedWebSocket extends EventTarget {
          static CONNECTING = 0; static OPEN = 1; static CLOSING = 2; static CLOSED = 3;
          constructor(url) {
            super(); this.url = url; this.readyState = 0; window.wsAttempts = ++attempts;
            setTimeout(() => { this.readyState = 3; this.onclose?.(new CloseEvent('close', { code: 1006 })); }, 10);
          }
          send() {} close() {}
        };
      })()`);
      const blockedViolations = await watchContentSecurityPolicy(blocked);
      const sse = await blocked.newPage();
      await sse.goto(hub.baseUrl);
      await logIn(sse, OPERATOR_TOKEN);
      await expect.poll(() => sse.locator('#conn').getAttribute('data-transport'), { timeout: 20_000 }).toBe('sse');
      await expect.poll(() => sse.locator('#conn').textContent()).toBe('live (SSE)');
      expect(await sse.evaluate<number>('window.wsAttempts')).toBe(2);
      started();
      const row = sse.locator(`[data-testid=device-list] .row[data-device="${DEVICE}"]`);
      await expect.poll(() => row.getAttribute('data-online')).toBe('false');
      await screenshot(sse, 'e2e-7-sse-fallback');
      expect(blockedViolations.list()).toEqual([]);
    } finally {
      await blocked.close();
    }
  }, 30_000);

  it('ran every case above under the content security policy without a violation', () => {
    expect(violations.list()).toEqual([]);
  });
});
