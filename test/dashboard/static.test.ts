/**
 * The hub serves the built page at `/` without a login, with caching and a
 * content security policy that allow nothing from other origins, while every
 * data route still wants the operator's credentials.
 */
import { readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHub, type TestHub } from '../support/hub.js';

const DIST = path.resolve(import.meta.dirname, '../../dist/dashboard');

describe('dashboard page served by the hub', () => {
  let hub: TestHub;

  beforeAll(async () => {
    hub = await startHub();
  });
  afterAll(async () => {
    await hub?.close();
  });

  it('serves index.html at / with no login, revalidated, with a same-origin CSP', async () => {
    const res = await fetch(`${hub.baseUrl}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('cache-control')).toBe('no-cache');
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    const html = await res.text();
    // Everything is bundled: the page loads nothing from another origin.
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
    const script = /<script[^>]+src="([^"]+)"/.exec(html)?.[1];
    expect(script).toMatch(/^\/assets\/.+\.js$/);
    const asset = await fetch(`${hub.baseUrl}${script}`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get('content-type')).toMatch(/javascript/);
    expect(asset.headers.get('cache-control')).toContain('immutable');
    const css = /<link[^>]+href="([^"]+\.css)"/.exec(html)?.[1];
    expect((await fetch(`${hub.baseUrl}${css}`)).status).toBe(200);
  });

  it('bundles everything: no built JS or CSS file names another origin to load from (no CDN)', async () => {
    const assets = readdirSync(path.join(DIST, 'assets')).filter((file) => /\.(js|css)$/.test(file));
    expect(assets.some((file) => file.endsWith('.js'))).toBe(true);
    expect(assets.some((file) => file.endsWith('.css'))).toBe(true);
    // XML namespace names look like URLs but are identifiers, never fetched.
    const namespaces = /^https?:\/\/www\.w3\.org\/(1999\/xhtml|2000\/svg|1998\/Math\/MathML|1999\/xlink|XML\/1998\/namespace|2000\/xmlns\/)$/;
    for (const file of assets) {
      // Fetched from the hub: what the browser gets, not only what is on disk.
      const res = await fetch(`${hub.baseUrl}/assets/${file}`);
      expect(res.status, file).toBe(200);
      const text = await res.text();
      const absolute = [...text.matchAll(/\b(?:https?|wss?):\/\/[^\s"'`)\\]+/g)].map((m) => m[0]).filter((url) => !namespaces.test(url));
      expect(absolute, file).toEqual([]);
      // Protocol-relative ("//cdn.example.com/x.js") in a string or a CSS url().
      expect(text, file).not.toMatch(/["'`(]\s*\/\/[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+/);
      if (file.endsWith('.css')) expect(text, file).not.toMatch(/@import/);
    }
  });

  it('keeps data behind the login and unknown paths as JSON 404s', async () => {
    expect((await fetch(`${hub.baseUrl}/v1/devices`)).status).toBe(401);
    const missing = await fetch(`${hub.baseUrl}/v1/nope`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toMatch(/json/);
    expect((await fetch(`${hub.baseUrl}/assets/nope.js`)).status).toBe(404);
    // The static routes stay out of the operator API's description.
    const openapi = (await hub.api('GET', '/openapi.json')).body as { paths: Record<string, unknown> };
    expect(Object.keys(openapi.paths).filter((p) => p === '/' || p.startsWith('/assets'))).toEqual([]);
  });

  it('says how to build the page when it is missing', async () => {
    const empty = await mkdtemp(path.join(os.tmpdir(), 'pulsewire-no-dashboard-'));
    const bare = await startHub({}, { dashboardDir: empty });
    try {
      const res = await fetch(`${bare.baseUrl}/`);
      expect(res.status).toBe(503);
      expect(await res.text()).toContain('npm run build');
    } finally {
      await bare.close();
      await rm(empty, { recursive: true, force: true });
    }
  });
});
