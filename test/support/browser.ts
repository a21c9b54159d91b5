/**
 * A real headless Chromium for the dashboard tests: Debian's package
 * (scripts/setup.sh installs it), driven by playwright-core, which downloads
 * no browser of its own. Screenshots go to test-artifacts/dashboard/.
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type ConsoleMessage, type Page } from 'playwright-core';

export const CHROMIUM_PATH = process.env.PULSEWIRE_CHROMIUM ?? '/usr/bin/chromium';
export const ARTIFACTS_DIR = path.resolve(import.meta.dirname, '../../test-artifacts/dashboard');

/**
 * Fails, never skips, when Chromium is missing: scripts/setup.sh installs it,
 * so a browser test that passed as skipped would only hide a broken setup.
 */
export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`no Chromium at ${CHROMIUM_PATH}: run scripts/setup.sh (it installs Debian's chromium) or set PULSEWIRE_CHROMIUM`);
  }
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    // The sandbox needs user namespaces, which containers and root sessions often lack.
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
  });
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  const file = path.join(ARTIFACTS_DIR, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** Logs in through the page's own form, as an operator would. */
export async function logIn(page: Page, token: string): Promise<void> {
  await page.getByTestId('login-token').fill(token);
  await page.getByTestId('login-submit').click();
}

export type PolicyViolation = { directive: string; blocked: string; source: string; page: string };
export type PolicyViolations = { list(): PolicyViolation[]; clear(): void };

/**
 * Records every content-security-policy violation in the context's pages:
 * the page's own `securitypolicyviolation` events (what the policy blocked;
 * `blocked` is the URL, or "inline") and Chromium's console errors about the
 * policy (`blocked` is the message), which also cover a frame the policy
 * kept out. Most violations are seen both ways.
 */
export async function watchContentSecurityPolicy(context: BrowserContext): Promise<PolicyViolations> {
  const seen: PolicyViolation[] = [];
  await context.exposeBinding('__pulsewireCspViolation', ({ page }, v: Omit<PolicyViolation, 'page'>) => { seen.push({ ...v, page: page.url() }); });
  // A string, not a function: this runs in the page, and the tests are compiled without the DOM's types.
  await context.addInitScript(`document.addEventListener('securitypolicyviolation', (e) => {
    window.__pulsewireCspViolation({ directive: e.effectiveDirective, blocked: e.blockedURI, source: e.sourceFile + ':' + e.lineNumber });
  })`);
  const onConsole = (message: ConsoleMessage) => {
    if (message.type() === 'error' && /Content Security Policy/i.test(message.text())) {
      seen.push({ directive: /directive: "([^"]+)"/.exec(message.text())?.[1] ?? 'console', blocked: message.text(), source: 'console', page: message.location().url });
    }
  };
  context.on('page', (page) => page.on('console', onConsole));
  for (const page of context.pages()) page.on('console', onConsole);
  return { list: () => [...seen], clear: () => { seen.length = 0; } };
}
