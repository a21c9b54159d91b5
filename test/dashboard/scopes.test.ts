/**
 * The page with operator keys of each scope, in a real browser against a real
 * hub: it logs in with a key (not only the bootstrap token), says whose key
 * it is, and leaves out what the key's scope cannot do. A read key watches a
 * device without command form, cancel or desired-state patch; an operate key
 * gets them and its command is accepted by the hub.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { launchBrowser, logIn, screenshot } from '../support/browser.js';
import { startHub, type TestHub } from '../support/hub.js';

describe('dashboard with scoped operator keys', () => {
  let hub: TestHub;
  let browser: Browser;
  const keys: Record<string, string> = {};

  async function pageLoggedInWith(key: string): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    await page.goto(hub.baseUrl);
    await page.getByTestId('login-form').waitFor();
    await logIn(page, key);
    await page.getByTestId('fleet-view').waitFor();
    return page;
  }

  beforeAll(async () => {
    hub = await startHub();
    browser = await launchBrowser();
    for (const scope of ['read', 'operate']) keys[scope] = (await hub.api('POST', '/v1/keys', { name: `${scope}-console`, scope })).body.key;
    expect((await hub.api('PUT', '/v1/devices/scoped-1')).status).toBe(201);
    // A command already queued, so the read page has a row it must not offer to cancel.
    expect((await hub.api('POST', '/v1/devices/scoped-1/commands', { name: 'reboot' })).status).toBe(202);
  });
  afterAll(async () => {
    await browser?.close();
    await hub?.close();
  });

  it('a read key sees the device, its state and commands, but no command form, cancel or desired patch', async () => {
    const page = await pageLoggedInWith(keys.read!);
    expect(await page.getByTestId('who').textContent()).toBe('read-console (read)');
    await page.goto(`${hub.baseUrl}/#/device/scoped-1`);
    await page.getByTestId('device-view').waitFor();
    await page.locator('[data-testid=command-rows] tr[data-status=queued]').waitFor();
    await page.getByTestId('read-only-note').waitFor();
    expect(await page.getByTestId('command-form').count()).toBe(0);
    expect(await page.getByTestId('patch-form').count()).toBe(0);
    expect(await page.getByTestId('command-cancel').count()).toBe(0);
    await screenshot(page, 'scopes-read-device');
    await page.context().close();
  }, 60_000);

  it('an operate key gets the forms, and the command it sends is accepted', async () => {
    const page = await pageLoggedInWith(keys.operate!);
    expect(await page.getByTestId('who').textContent()).toBe('operate-console (operate)');
    await page.goto(`${hub.baseUrl}/#/device/scoped-1`);
    await page.getByTestId('command-form').waitFor();
    expect(await page.getByTestId('patch-form').count()).toBe(1);
    expect(await page.getByTestId('read-only-note').count()).toBe(0);
    await page.locator('[data-testid=command-rows] [data-testid=command-cancel]').first().waitFor();
    await page.getByTestId('command-name').fill('blink');
    await page.getByTestId('command-send').click();
    await page.locator('[data-testid=command-rows] tr', { hasText: 'blink' }).waitFor();
    const listed = (await hub.api('GET', '/v1/devices/scoped-1/commands')).body.commands as { name: string }[];
    expect(listed.map((c) => c.name).sort()).toEqual(['blink', 'reboot']);
    // The hub's audit log names the key that sent it.
    const audit = (await hub.api('GET', '/v1/audit?action=command.create&target=scoped-1')).body.entries as { key: string; detail: string }[];
    expect(audit.map((e) => [e.key, e.detail])).toEqual([['operate-console', 'blink'], ['operator-token', 'reboot']]);
    await screenshot(page, 'scopes-operate-device');
    await page.context().close();
  }, 60_000);
});
