/**
 * The operator dashboard's static files (dashboards/web, built by Vite into
 * dist/dashboard) at `/`. The files are public; every piece of data the page
 * shows comes from the operator API and the live stream, which need the login.
 *
 * Security headers (CSP, nosniff, frame denial) are app-wide: api/security-headers.ts.
 *
 * Routes are registered per built file (`wildcard: false`), so an unknown path
 * is still the hub's JSON 404 rather than a page. Hashed assets are cached for
 * good; index.html is revalidated, so a new build is picked up at once.
 */
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

/** dist/src/api -> dist/dashboard when built; src/api -> dist/dashboard under tsx/vitest. */
export const DASHBOARD_DIR_CANDIDATES = [path.resolve(here, '../../dashboard'), path.resolve(here, '../../dist/dashboard')];

export function findDashboardDir(): string | undefined {
  return DASHBOARD_DIR_CANDIDATES.find((dir) => existsSync(path.join(dir, 'index.html')));
}

export type DashboardPageOptions = { root?: string };

export async function dashboardPage(app: FastifyInstance, opts: DashboardPageOptions): Promise<void> {
  const root = opts.root ?? findDashboardDir();
  if (!root || !existsSync(path.join(root, 'index.html'))) {
    app.log.warn({ looked: opts.root ?? DASHBOARD_DIR_CANDIDATES }, 'dashboard not built; `npm run build` builds it');
    app.get('/', { schema: { hide: true } }, async (_request, reply) =>
      reply.code(503).type('text/plain; charset=utf-8').send('The dashboard is not built: run `npm run build`, then restart the hub.\n'));
    return;
  }
  await app.register(fastifyStatic, {
    root,
    prefix: '/',
    wildcard: false,
    index: 'index.html',
    decorateReply: false,
    cacheControl: false,
    setHeaders(reply, filePath) {
      const isHashedAsset = filePath.includes(`${path.sep}assets${path.sep}`);
      reply.header('cache-control', isHashedAsset ? 'public, max-age=31536000, immutable' : 'no-cache');
      // The content security policy, nosniff and frame denial come with every answer (api/security-headers.ts).
    },
  });
}
