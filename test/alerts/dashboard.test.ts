/**
 * Firing alerts on the dashboard, in Chromium against a real hub: a device
 * (a real socket) crosses a rule's threshold and the fleet view counts and
 * lists the alert, live; the device view shows it; the reading that clears it
 * takes it off both, live, without a reload; many alerts at once are
 * counted and listed newest first, at most 50. Under the hub's content
 * security policy with no violation. Screenshots go to test-artifacts/dashboard/.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { encodeTelemetry } from '../../src/protocol/encode.js';
import { launchBrowser, logIn, screenshot, watchContentSecurityPolicy, type PolicyViolations } from '../support/browser.js';
import { TestDevice } from '../support/device-client.js';
import { OPERATOR_TOKEN, startHub, type TestHub } from '../support/hub.js';

describe('alerts on the dashboard (real hub, Chromium)', () => {
  let hub: TestHub;
  let browser: Browser;
  let page: Page;
  let violations: PolicyViolations;
  let device: TestDevice | undefined;
  let seq = 0;
  const send = async (value: number) => {
    device!.send(encodeTelemetry(++seq, [{ bn: 'tank-1/', n: 'level', u: '%', v: value }]));
    expect(await device!.next()).toMatchObject({ type: 2, seq });
  };

  beforeAll(async () => {
    hub = await startHub();
    browser = await launchBrowser();
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    violations = await watchContentSecurityPolicy(context);
    page = await context.newPage();
  });
  afterAll(async () => {
    await device?.close();
    await browser?.close();
    await hub?.close();
  });

  it('a rule firing and then resolving shows on the fleet view and the device view, live', async () => {
    const rule = (await hub.api('POST', '/v1/rules', {
      name: 'tank low', devices: { prefix: 'tank-' }, series: 'level', condition: { kind: 'below', threshold: 10, clearAt: 20 },
    })).body as { id: string };
    device = await TestDevice.connect(hub.deviceUrl, { id: 'tank-1' });
    await send(50);
    await page.goto(hub.baseUrl);
    await logIn(page, OPERATOR_TOKEN);
    await page.getByTestId('fleet-view').waitFor();
    await expect.poll(() => page.locator('#conn').getAttribute('data-state')).toBe('open');
    expect(await page.getByTestId('alert-count').textContent()).toBe('0');

    await send(5);
    const alertId = `${rule.id}/tank-1/level`;
    const listed = page.locator(`[data-testid=firing-alerts] li[data-alert="${alertId}"]`);
    await listed.waitFor();
    expect(await page.getByTestId('alert-count').textContent()).toBe('1');
    expect(await listed.textContent()).toMatch(/firing\s*tank low\s*tank-1\s*level < 10 · 5/);
    await screenshot(page, 'alerts-1-fleet-firing');

    await listed.locator('a').click();
    const onDevice = page.locator(`[data-testid=device-alerts] li[data-alert="${alertId}"]`);
    await onDevice.waitFor();
    expect(await onDevice.textContent()).toContain('tank low');
    await screenshot(page, 'alerts-2-device-firing');

    await send(15); // back above the threshold, not yet at clearAt: still firing
    await send(25);
    await onDevice.waitFor({ state: 'detached' });
    expect(await page.getByTestId('device-alerts').textContent()).toContain('none firing');
    await screenshot(page, 'alerts-3-device-resolved');

    await page.locator('a.back').click();
    await page.getByTestId('fleet-view').waitFor();
    await expect.poll(() => page.getByTestId('alert-count').textContent()).toBe('0');
    expect(await page.locator('[data-testid=firing-alerts] li[data-alert]').count()).toBe(0);
    expect(violations.list()).toEqual([]);
  }, 60_000);

  it('many alerts at once: the count says how many, the list shows the newest 50 and how many more', async () => {
    // A staleness rule naming devices that never report: the hub's sweep fires one alert per device.
    const ids = Array.from({ length: 56 }, (_, i) => `silent-${String(i).padStart(2, '0')}`);
    await hub.api('POST', '/v1/rules', { name: 'silent', devices: { ids }, series: 'temperature', condition: { kind: 'stale', afterSeconds: 1 } });
    await expect.poll(() => page.getByTestId('alert-count').textContent(), { timeout: 15_000 }).toBe('56');
    const rows = page.locator('[data-testid=firing-alerts] li[data-alert]');
    await expect.poll(() => rows.count()).toBe(50);
    expect(await page.getByTestId('more-alerts').textContent()).toBe('and 6 more, older');
    expect(await rows.first().textContent()).toMatch(/firing\s*silent\s*silent-\d\d\s*temperature no reading for 1 s/);
    await screenshot(page, 'alerts-4-fleet-many');
    expect(violations.list()).toEqual([]);
  }, 60_000);
});
